//! Start-up: finds every partition in whichever log directory holds it (Kafka's
//! `LogManager.loadLogs`), and settles moves a crash interrupted.
//!
//! A move ([`super::mover`]) fills `<dir B>/<tp>.<id>-future`, then at its commit point
//! renames `<dir A>/<tp>` to `<dir A>/<tp>.<id>-delete`, then the future to `<dir B>/<tp>`,
//! then removes the delete directory. So after a crash, for each partition:
//!
//! - a current directory exists: any future is an unfinished copy (abandoned: removed) and
//!   any delete directory an old copy (removed);
//! - no current, but a future and a delete directory with the same id: the crash hit
//!   between the two renames and the future is complete: it becomes current;
//! - no current, only a delete directory: the old copy is restored;
//! - no current, only a future: cannot happen by the above; it is left in place, logged.
//!
//! One partition current in two directories stops the start, with Kafka's message.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::names::{self, Kind};

pub type TopicPartition = (String, i32);

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(
        "Duplicate log directories for {}-{} are found in both {} and {}. It is likely because log directory failure happened while broker was replacing current replica with future replica. Recover broker from this failure by manually deleting one of the two directories for this partition. It is recommended to delete the partition in the log directory that is known to have failed recently.",
        tp.0, tp.1, first.display(), second.display()
    )]
    Duplicate {
        tp: TopicPartition,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("cannot settle an interrupted move in {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What one scan found: `(directory index, name)` per partition and kind.
#[derive(Debug, Default)]
pub struct Found {
    pub current: BTreeMap<TopicPartition, Vec<usize>>,
    pub future: BTreeMap<TopicPartition, Vec<(usize, String)>>,
    pub delete: BTreeMap<TopicPartition, Vec<(usize, String)>>,
}

/// A step that settles the directories.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Rename `from` to the current name of its partition, in directory `dir`.
    Promote { dir: usize, from: String },
    /// Remove a leftover copy.
    Remove { dir: usize, name: String },
}

/// The outcome: where each partition is, and what to do first.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub location: BTreeMap<TopicPartition, usize>,
    pub actions: Vec<Action>,
}

/// Lists the partition directories of `dirs` (`(index, path)`, online ones only).
pub fn scan(dirs: &[(usize, &Path)]) -> Result<Found, (usize, std::io::Error)> {
    let mut found = Found::default();
    for &(index, path) in dirs {
        let entries = std::fs::read_dir(path).map_err(|e| (index, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| (index, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(parsed) = names::parse(name) else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let tp = (parsed.topic, parsed.partition);
            match parsed.kind {
                Kind::Current => found.current.entry(tp).or_default().push(index),
                Kind::Future(id) => found.future.entry(tp).or_default().push((index, id)),
                Kind::Delete(id) => found.delete.entry(tp).or_default().push((index, id)),
            }
        }
    }
    Ok(found)
}

/// Decides where each partition is (`paths[i]` is directory `i`, for messages). Partitions
/// the metadata does not name (`known`) only have their future and delete copies removed;
/// their current directories are the strays the registry sets aside.
pub fn plan(
    found: &Found,
    known: &HashSet<TopicPartition>,
    paths: &[PathBuf],
) -> Result<Plan, DiscoveryError> {
    let mut plan = Plan::default();
    let path_of = |i: usize, tp: &TopicPartition| paths[i].join(names::current(&tp.0, tp.1));
    for (tp, dirs) in &found.current {
        if let [first, second, ..] = dirs.as_slice() {
            return Err(DiscoveryError::Duplicate {
                tp: tp.clone(),
                first: path_of(*first, tp),
                second: path_of(*second, tp),
            });
        }
        plan.location.insert(tp.clone(), dirs[0]);
    }
    let remove = |plan: &mut Plan, dir: usize, name: String| {
        plan.actions.push(Action::Remove { dir, name });
    };
    let mut tps: Vec<&TopicPartition> = found.future.keys().chain(found.delete.keys()).collect();
    tps.sort();
    tps.dedup();
    for tp in tps {
        let futures = found.future.get(tp).map(Vec::as_slice).unwrap_or_default();
        let deletes = found.delete.get(tp).map(Vec::as_slice).unwrap_or_default();
        let future_name = |id: &str| names::future(&tp.0, tp.1, id);
        let delete_name = |id: &str| names::delete(&tp.0, tp.1, id);
        if plan.location.contains_key(tp) || !known.contains(tp) {
            for (dir, id) in futures {
                remove(&mut plan, *dir, future_name(id));
            }
            for (dir, id) in deletes {
                remove(&mut plan, *dir, delete_name(id));
            }
            continue;
        }
        let committed = futures
            .iter()
            .find(|(_, id)| deletes.iter().any(|(_, d)| d == id));
        if let Some((dir, id)) = committed {
            plan.actions.push(Action::Promote {
                dir: *dir,
                from: future_name(id),
            });
            plan.location.insert(tp.clone(), *dir);
            for (d, other) in futures.iter().filter(|(_, other)| other != id) {
                remove(&mut plan, *d, future_name(other));
            }
            for (d, other) in deletes {
                remove(&mut plan, *d, delete_name(other));
            }
        } else if let Some((dir, id)) = deletes.first() {
            plan.actions.push(Action::Promote {
                dir: *dir,
                from: delete_name(id),
            });
            plan.location.insert(tp.clone(), *dir);
            for (d, other) in futures {
                remove(&mut plan, *d, future_name(other));
            }
        } else {
            tracing::warn!(topic = %tp.0, partition = tp.1, "found only an unfinished move copy of a partition; left in place for the operator, the partition starts empty");
        }
    }
    Ok(plan)
}

/// Carries out `plan.actions` durably (each rename or removal followed by an fsync of its
/// directory).
pub fn execute(plan: &Plan, paths: &[PathBuf]) -> Result<(), DiscoveryError> {
    let fsync = |dir: &Path| {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(|source| DiscoveryError::Io {
                path: dir.to_path_buf(),
                source,
            })
    };
    for action in &plan.actions {
        match action {
            Action::Promote { dir, from } => {
                let Some(parsed) = names::parse(from) else {
                    continue;
                };
                let base = &paths[*dir];
                let to = base.join(names::current(&parsed.topic, parsed.partition));
                std::fs::rename(base.join(from), &to).map_err(|source| DiscoveryError::Io {
                    path: to.clone(),
                    source,
                })?;
                fsync(base)?;
                tracing::info!(dir = %to.display(), from = %from, "settled a move interrupted by a restart");
            }
            Action::Remove { dir, name } => {
                let path = paths[*dir].join(name);
                std::fs::remove_dir_all(&path).map_err(|source| DiscoveryError::Io {
                    path: path.clone(),
                    source,
                })?;
                fsync(&paths[*dir])?;
                tracing::info!(dir = %path.display(), "removed a copy left by an interrupted move");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(n: i32) -> TopicPartition {
        ("t".to_string(), n)
    }

    fn paths() -> Vec<PathBuf> {
        vec![PathBuf::from("/a"), PathBuf::from("/b")]
    }

    fn known() -> HashSet<TopicPartition> {
        (0..4).map(tp).collect()
    }

    const ID: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn one_partition_in_two_directories_is_refused_with_kafkas_message() {
        let mut found = Found::default();
        found.current.insert(tp(0), vec![0, 1]);
        let e = plan(&found, &known(), &paths()).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "Duplicate log directories for t-0 are found in both /a/t-0 and /b/t-0."
            ),
            "{e}"
        );
    }

    #[test]
    fn a_move_before_its_commit_point_is_abandoned() {
        let mut found = Found::default();
        found.current.insert(tp(0), vec![0]);
        found.future.insert(tp(0), vec![(1, ID.into())]);
        let p = plan(&found, &known(), &paths()).unwrap();
        assert_eq!(p.location[&tp(0)], 0);
        assert_eq!(
            p.actions,
            vec![Action::Remove {
                dir: 1,
                name: names::future("t", 0, ID)
            }]
        );
    }

    #[test]
    fn a_move_between_its_renames_is_finished() {
        let mut found = Found::default();
        found.future.insert(tp(1), vec![(1, ID.into())]);
        found.delete.insert(tp(1), vec![(0, ID.into())]);
        let p = plan(&found, &known(), &paths()).unwrap();
        assert_eq!(p.location[&tp(1)], 1);
        assert_eq!(
            p.actions,
            vec![
                Action::Promote {
                    dir: 1,
                    from: names::future("t", 1, ID)
                },
                Action::Remove {
                    dir: 0,
                    name: names::delete("t", 1, ID)
                }
            ]
        );
    }

    #[test]
    fn a_finished_move_leaves_only_its_old_copy_to_remove() {
        let mut found = Found::default();
        found.current.insert(tp(2), vec![1]);
        found.delete.insert(tp(2), vec![(0, ID.into())]);
        let p = plan(&found, &known(), &paths()).unwrap();
        assert_eq!(p.location[&tp(2)], 1);
        assert_eq!(
            p.actions,
            vec![Action::Remove {
                dir: 0,
                name: names::delete("t", 2, ID)
            }]
        );
    }

    #[test]
    fn a_delete_copy_of_another_move_is_restored_not_mixed_up() {
        let mut found = Found::default();
        found.future.insert(tp(3), vec![(1, OTHER.into())]);
        found.delete.insert(tp(3), vec![(0, ID.into())]);
        let p = plan(&found, &known(), &paths()).unwrap();
        assert_eq!(p.location[&tp(3)], 0);
        assert_eq!(
            p.actions[0],
            Action::Promote {
                dir: 0,
                from: names::delete("t", 3, ID)
            }
        );
    }

    #[test]
    fn execute_settles_a_committed_move_on_disk() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let paths = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        std::fs::create_dir(a.path().join(names::delete("t", 1, ID))).unwrap();
        std::fs::create_dir(b.path().join(names::future("t", 1, ID))).unwrap();
        std::fs::write(b.path().join(names::future("t", 1, ID)).join("x"), b"1").unwrap();
        let found = scan(&[(0, a.path()), (1, b.path())]).unwrap();
        let p = plan(&found, &known(), &paths).unwrap();
        execute(&p, &paths).unwrap();
        assert!(b.path().join("t-1").join("x").exists());
        assert_eq!(std::fs::read_dir(a.path()).unwrap().count(), 0);
        let again = scan(&[(0, a.path()), (1, b.path())]).unwrap();
        assert_eq!(again.current[&tp(1)], vec![1]);
        assert!(again.future.is_empty() && again.delete.is_empty());
    }
}
