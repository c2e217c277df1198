//! Kafka's `meta.properties`, in every log directory and the metadata directory
//! (`MetaProperties`, `MetaPropertiesEnsemble`).
//!
//! On-disk format: a Java properties file, version 1:
//! ```text
//! #
//! #Written by Arus
//! cluster.id=<22 chars>
//! directory.id=<22 chars>
//! node.id=<int>
//! version=1
//! ```
//! Version 0 (ZooKeeper-era, `broker.id` instead of `node.id`, cluster id optional) is read
//! but never written. Written to `meta.properties.tmp`, fsynced, renamed, and the directory
//! fsynced, so a crash leaves the old or the new file.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use arus_protocol::Uuid;

use crate::ids;

pub const META_PROPERTIES: &str = "meta.properties";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaProperties {
    /// 0 or 1.
    pub version: u32,
    pub cluster_id: Option<String>,
    pub node_id: Option<i32>,
    pub directory_id: Option<Uuid>,
}

impl MetaProperties {
    /// A version 1 file.
    pub fn v1(cluster_id: &str, node_id: i32, directory_id: Uuid) -> MetaProperties {
        MetaProperties {
            version: 1,
            cluster_id: Some(cluster_id.to_string()),
            node_id: Some(node_id),
            directory_id: Some(directory_id),
        }
    }

    /// Kafka's `MetaProperties.toString`.
    pub fn describe(&self) -> String {
        let mut s = format!("MetaProperties(version={}", self.version);
        if let Some(c) = &self.cluster_id {
            s.push_str(&format!(", clusterId={c}"));
        }
        if let Some(n) = self.node_id {
            s.push_str(&format!(", nodeId={n}"));
        }
        if let Some(d) = &self.directory_id {
            s.push_str(&format!(", directoryId={d}"));
        }
        s.push(')');
        s
    }

    /// Kafka's `MetaProperties.Builder(Properties)` and `build()`.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<MetaProperties, String> {
        let version = match props.get("version").map(String::as_str).unwrap_or("0") {
            "0" => 0,
            "1" => 1,
            other => return Err(format!("Unknown meta.properties version number {other}")),
        };
        let int = |key: &str| -> Result<Option<i32>, String> {
            props
                .get(key)
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("Failed to parse {key} property as an int: {v}"))
                })
                .transpose()
        };
        let node_id = if version == 0 {
            int("broker.id")?
        } else {
            Some(
                int("node.id")?
                    .ok_or_else(|| "Failed to find required property node.id.".to_string())?,
            )
        };
        let cluster_id = props.get("cluster.id").cloned();
        let directory_id = props
            .get("directory.id")
            .map(|d| {
                Uuid::parse(d).ok_or_else(|| {
                    format!("Unable to read directory.id as a Uuid: Input string `{d}` decoded as 0 bytes, which is not equal to the expected 16 bytes of a base64-encoded UUID")
                })
            })
            .transpose()?;
        if version == 1 && cluster_id.is_none() {
            return Err("cluster.id was not found.".into());
        }
        Ok(MetaProperties {
            version,
            cluster_id,
            node_id,
            directory_id,
        })
    }

    /// The properties as `storage info` prints them (a sorted Java map:
    /// `{cluster.id=…, directory.id=…, node.id=1, version=1}`).
    pub fn properties_display(&self) -> String {
        let list: Vec<String> = self
            .to_map()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{{{}}}", list.join(", "))
    }

    fn to_text(&self) -> String {
        let mut text = String::from("#\n#Written by Arus\n");
        for (k, v) in self.to_map() {
            text.push_str(&format!("{k}={v}\n"));
        }
        text
    }

    fn to_map(&self) -> BTreeMap<&'static str, String> {
        let mut props = BTreeMap::new();
        props.insert("version", self.version.to_string());
        if let Some(c) = &self.cluster_id {
            props.insert("cluster.id", c.clone());
        }
        if let Some(n) = self.node_id {
            props.insert(
                if self.version == 0 {
                    "broker.id"
                } else {
                    "node.id"
                },
                n.to_string(),
            );
        }
        if let Some(d) = &self.directory_id {
            props.insert("directory.id", d.to_string());
        }
        props
    }
}

/// Parses a Java properties file's `key=value` (or `key:value`) lines; `#`/`!` comments.
/// The values Kafka writes here never need escapes.
pub fn parse_properties_text(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once(['=', ':']))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

/// Reads `dir/meta.properties`, or `None` when there is none.
pub fn read(dir: &Path) -> Result<Option<MetaProperties>, ReadError> {
    let path = dir.join(META_PROPERTIES);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ReadError::Io { path, source }),
    };
    MetaProperties::from_properties(&parse_properties_text(&text))
        .map(Some)
        .map_err(|reason| ReadError::Invalid { path, reason })
}

/// Writes `dir/meta.properties` atomically (creating `dir` if needed).
pub fn write(dir: &Path, meta: &MetaProperties) -> std::io::Result<()> {
    create_dir_durable(dir)?;
    let tmp = dir.join(format!("{META_PROPERTIES}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(meta.to_text().as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(META_PROPERTIES))?;
    File::open(dir)?.sync_all()
}

/// Creates `dir` (and its missing ancestors) so that the new entries survive a power cut:
/// each created directory's parent is fsynced.
pub fn create_dir_durable(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    fs::create_dir_all(dir)?;
    for d in missing.iter().rev() {
        let parent = match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// The `meta.properties` of every directory (Kafka's `MetaPropertiesEnsemble`).
#[derive(Clone, Debug, Default)]
pub struct Ensemble {
    /// Directories without a `meta.properties`.
    pub empty: Vec<PathBuf>,
    /// Directories whose file could not be read, with why.
    pub errors: Vec<(PathBuf, String)>,
    pub props: BTreeMap<PathBuf, MetaProperties>,
    pub metadata_dir: Option<PathBuf>,
}

/// Kafka's `VerificationFlag`s that Arus uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Verify {
    pub require_at_least_one_valid: bool,
    pub require_metadata_log_dir: bool,
}

impl Ensemble {
    /// Loads every directory of `log_dirs` and the metadata directory (each once).
    pub fn load(log_dirs: &[PathBuf], metadata_dir: Option<&Path>) -> Ensemble {
        let mut dirs: Vec<PathBuf> = log_dirs.to_vec();
        if let Some(m) = metadata_dir
            && !dirs.iter().any(|d| d == m)
        {
            dirs.push(m.to_path_buf());
        }
        dirs.sort();
        dirs.dedup();
        let mut ensemble = Ensemble {
            metadata_dir: metadata_dir.map(Path::to_path_buf),
            ..Default::default()
        };
        for dir in dirs {
            match read(&dir) {
                Ok(Some(meta)) => {
                    ensemble.props.insert(dir, meta);
                }
                Ok(None) => ensemble.empty.push(dir),
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "Error while reading meta.properties file");
                    ensemble.errors.push((dir, e.to_string()));
                }
            }
        }
        ensemble
    }

    /// Kafka's `MetaPropertiesEnsemble.verify`, with its messages.
    pub fn verify(
        &self,
        mut expected_cluster_id: Option<String>,
        mut expected_node_id: Option<i32>,
        flags: Verify,
    ) -> Result<(), String> {
        if flags.require_at_least_one_valid && self.props.is_empty() {
            return Err("No readable meta.properties files found.".into());
        }
        let mut seen: BTreeMap<Uuid, &Path> = BTreeMap::new();
        for (dir, meta) in &self.props {
            let path = dir.join(META_PROPERTIES);
            let path = path.display();
            match (&meta.cluster_id, &expected_cluster_id) {
                (None, _) if meta.version == 1 => {
                    return Err(format!(
                        "cluster.id was not specified in the v1 file: {path}"
                    ));
                }
                (None, _) => {}
                (Some(c), None) => expected_cluster_id = Some(c.clone()),
                (Some(c), Some(expected)) if c != expected => {
                    return Err(format!(
                        "Invalid cluster.id in: {path}. Expected {expected}, but read {c}"
                    ));
                }
                _ => {}
            }
            match (meta.node_id, expected_node_id) {
                (None, _) if meta.version == 1 => {
                    return Err(format!("node.id was not specified in {path}"));
                }
                (None, _) => {}
                (Some(n), None) => expected_node_id = Some(n),
                (Some(n), Some(expected)) if n != expected => {
                    return Err(format!(
                        "Stored node id {n} doesn't match previous node id {expected} in {path}. If you moved your data, make sure your configured node id matches. If you intend to create a new node, you should remove all data in your data directories."
                    ));
                }
                _ => {}
            }
            if let Some(id) = meta.directory_id {
                if ids::is_reserved_directory_id(&id) {
                    return Err(format!(
                        "Invalid resrved directory ID {id} found in {}",
                        dir.display()
                    ));
                }
                if let Some(prev) = seen.insert(id, dir) {
                    return Err(format!(
                        "Duplicate directory ID Optional[{id}] found. It was the ID of {}, but also of {}",
                        prev.display(),
                        dir.display()
                    ));
                }
            }
        }
        match &self.metadata_dir {
            None if flags.require_metadata_log_dir => {
                Err("No metadata log directory was specified.".into())
            }
            Some(m) if self.errors.iter().any(|(d, _)| d == m) => Err(format!(
                "Encountered I/O error in metadata log directory {}. Cannot continue.",
                m.display()
            )),
            _ => Ok(()),
        }
    }

    pub fn cluster_id(&self) -> Option<&str> {
        self.props.values().find_map(|m| m.cluster_id.as_deref())
    }

    pub fn node_id(&self) -> Option<i32> {
        self.props.values().find_map(|m| m.node_id)
    }

    /// The directory ids already in use.
    pub fn directory_ids(&self) -> Vec<Uuid> {
        self.props.values().filter_map(|m| m.directory_id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trips_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        let id = ids::random_directory_id(&[]);
        let meta = MetaProperties::v1("MkU3OEVBNTcwNTJENDM2Qk", 3, id);
        write(dir.path(), &meta).unwrap();
        let text = fs::read_to_string(dir.path().join(META_PROPERTIES)).unwrap();
        assert!(text.contains("version=1\n") && text.contains("node.id=3\n"));
        assert!(text.contains(&format!("directory.id={id}\n")));
        assert_eq!(read(dir.path()).unwrap(), Some(meta));
    }

    #[test]
    fn kafkas_own_file_is_read() {
        let text = "#\n#Mon Dec 07 10:00:00 UTC 2026\nnode.id=1\ndirectory.id=jvAgu4pLQ1OCB3HV6yyVvw\nversion=1\ncluster.id=4L6g3nShT-eMCtK--X86sw\n";
        let m = MetaProperties::from_properties(&parse_properties_text(text)).unwrap();
        assert_eq!(m.node_id, Some(1));
        assert_eq!(m.cluster_id.as_deref(), Some("4L6g3nShT-eMCtK--X86sw"));
        assert_eq!(
            m.directory_id.unwrap().to_string(),
            "jvAgu4pLQ1OCB3HV6yyVvw"
        );
        // Version 0 names the node broker.id and may lack a cluster id.
        let v0 = MetaProperties::from_properties(&parse_properties_text("broker.id=5")).unwrap();
        assert_eq!((v0.version, v0.node_id, v0.cluster_id), (0, Some(5), None));
        assert!(
            MetaProperties::from_properties(&parse_properties_text("version=1\nnode.id=1"))
                .is_err()
        );
    }

    #[test]
    fn verify_refuses_mismatches_with_kafkas_messages() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
        let one = Ensemble::load(&dirs, Some(a.path()));
        assert_eq!(
            one.verify(
                None,
                Some(1),
                Verify {
                    require_at_least_one_valid: true,
                    ..Default::default()
                }
            ),
            Err("No readable meta.properties files found.".into())
        );
        let id = ids::random_directory_id(&[]);
        write(a.path(), &MetaProperties::v1("c1", 1, id)).unwrap();
        write(
            b.path(),
            &MetaProperties::v1("c2", 1, ids::random_directory_id(&[id])),
        )
        .unwrap();
        let e = Ensemble::load(&dirs, Some(a.path()))
            .verify(None, None, Verify::default())
            .unwrap_err();
        assert!(e.starts_with("Invalid cluster.id in: "), "{e}");
        write(
            b.path(),
            &MetaProperties::v1("c1", 2, ids::random_directory_id(&[id])),
        )
        .unwrap();
        let e = Ensemble::load(&dirs, Some(a.path()))
            .verify(None, None, Verify::default())
            .unwrap_err();
        assert!(e.starts_with("Stored node id "), "{e}");
        write(b.path(), &MetaProperties::v1("c1", 1, id)).unwrap();
        let e = Ensemble::load(&dirs, Some(a.path()))
            .verify(None, None, Verify::default())
            .unwrap_err();
        assert!(e.starts_with("Duplicate directory ID"), "{e}");
        let e = Ensemble::load(&dirs, Some(a.path()))
            .verify(None, Some(7), Verify::default())
            .unwrap_err();
        assert!(e.contains("doesn't match previous node id 7"), "{e}");
    }
}
