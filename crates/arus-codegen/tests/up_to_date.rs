//! Checks that the committed generated code matches what the generator produces from the
//! specs. The spec directory is `$ARUS_KAFKA_SPECS`, else `shared/kafka-message-specs` next
//! to the repository; when neither exists the test is skipped (prints a note).

use std::path::PathBuf;

#[test]
fn generated_code_is_up_to_date() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let specs = std::env::var_os("ARUS_KAFKA_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../../shared/kafka-message-specs"));
    if !specs.join("error-codes.tsv").exists() {
        eprintln!("skipping: no specs at {}", specs.display());
        return;
    }
    let committed = manifest.join("../arus-protocol/src/generated");
    let tmp = std::env::temp_dir().join(format!("arus-codegen-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_arus-codegen"))
        .arg(&specs)
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(status.success(), "generator failed");
    let mut names: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut committed_names: Vec<_> = std::fs::read_dir(&committed)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    committed_names.sort();
    assert_eq!(names, committed_names, "generated file set differs");
    for n in &names {
        let a = std::fs::read_to_string(tmp.join(n)).unwrap();
        let b = std::fs::read_to_string(committed.join(n)).unwrap();
        assert!(
            a == b,
            "{} is stale: rerun `cargo run -p arus-codegen -- <specs> crates/arus-protocol/src/generated`",
            n.to_string_lossy()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
