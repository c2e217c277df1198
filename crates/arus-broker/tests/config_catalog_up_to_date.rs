//! Checks that the committed catalog of Kafka's broker configs
//! (`src/config_catalog/kafka.rs`) is what the generator writes from the Kafka jars. The
//! classpath is read from the file `$ARUS_KAFKA_CLASSPATH`, else from
//! `compat/work/reference-classpath.txt` (written by `compat/reference/kafka-broker.sh`); the
//! test is skipped (with a note) when neither exists or `java` is missing.

use std::path::PathBuf;

#[test]
fn config_catalog_is_up_to_date() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = manifest.join("../..");
    let cp_file = std::env::var_os("ARUS_KAFKA_CLASSPATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("compat/work/reference-classpath.txt"));
    let Ok(classpath) = std::fs::read_to_string(&cp_file) else {
        eprintln!("skipping: no Kafka classpath at {}", cp_file.display());
        return;
    };
    let output = match std::process::Command::new("java")
        .arg("-cp")
        .arg(classpath.trim())
        .arg(manifest.join("config-catalog/GenerateConfigCatalog.java"))
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipping: cannot run java: {e}");
            return;
        }
    };
    assert!(
        output.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read_to_string(manifest.join("src/config_catalog/kafka.rs")).unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout) == committed,
        "src/config_catalog/kafka.rs is stale: regenerate it as \
         crates/arus-broker/config-catalog/GenerateConfigCatalog.java's header says"
    );
}
