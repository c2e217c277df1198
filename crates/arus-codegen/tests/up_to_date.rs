//! Checks that the committed generated code matches what the generator produces from the
//! specs. The spec directory is `$ARUS_KAFKA_SPECS`, else `shared/kafka-message-specs-4.4.0` next
//! to the repository; when neither exists the test is skipped (prints a note).

use std::path::{Path, PathBuf};

#[test]
fn generated_code_is_up_to_date() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let specs = std::env::var_os("ARUS_KAFKA_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../../shared/kafka-message-specs-4.4.0"));
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
    compare_dirs(&tmp, &committed);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Asserts that `generated` and `committed` hold the same files (recursively) with the same
/// contents.
fn compare_dirs(generated: &Path, committed: &Path) {
    let list = |d: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let names = list(generated);
    assert_eq!(
        names,
        list(committed),
        "generated file set differs in {}",
        committed.display()
    );
    for n in &names {
        let (a, b) = (generated.join(n), committed.join(n));
        if a.is_dir() {
            compare_dirs(&a, &b);
            continue;
        }
        let a = std::fs::read_to_string(a).unwrap();
        let b = std::fs::read_to_string(&b).unwrap();
        assert!(
            a == b,
            "{} is stale: rerun `cargo run -p arus-codegen -- <specs> crates/arus-protocol/src/generated`",
            b_path(committed, n)
        );
    }
}

fn b_path(dir: &Path, n: &std::ffi::OsStr) -> String {
    dir.join(n).display().to_string()
}
