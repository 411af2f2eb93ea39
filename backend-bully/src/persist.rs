//! The state file: highest epoch seen and the leader accepted at it, per election, replaced atomically.
//!
//! ```text
//! elector-bully-state v1
//! <election> <epoch> <accepted leader id or ->
//! ```
//! Written as a temporary file, fsynced, renamed over the old one, and the directory
//! fsynced, so a crash leaves either the old or the new file, never a mix.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use election_core::{ElectionName, Error, NodeId, Result};

use crate::core::HardState;

const HEADER: &str = "elector-bully-state v1";
const FILE: &str = "bully-state";

/// One node's durable state, kept in memory and rewritten whole on every change.
#[derive(Debug)]
pub(crate) struct StateFile {
    dir: PathBuf,
    state: BTreeMap<ElectionName, HardState>,
}

impl StateFile {
    /// Opens (creating the directory if needed) and reads the state file.
    pub(crate) fn open(dir: &Path) -> Result<StateFile> {
        fs::create_dir_all(dir).map_err(|e| {
            Error::config(
                "bully.data_dir",
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let path = dir.join(FILE);
        let state = match fs::read_to_string(&path) {
            Ok(text) => parse(&text).map_err(|why| {
                Error::config(
                    "bully.data_dir",
                    format!(
                        "state file {} is corrupt ({why}); it holds this node's highest epochs seen; losing it lets epochs go back, \
                         so restore it rather than delete it",
                        path.display()
                    ),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(Error::config(
                    "bully.data_dir",
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        Ok(StateFile {
            dir: dir.to_owned(),
            state,
        })
    }

    /// The state as loaded.
    pub(crate) fn state(&self) -> &BTreeMap<ElectionName, HardState> {
        &self.state
    }

    /// Merges `changes` and makes the whole state durable before returning.
    pub(crate) fn save(&mut self, changes: Vec<(ElectionName, HardState)>) -> std::io::Result<()> {
        for (e, hs) in changes {
            self.state.insert(e, hs);
        }
        let mut text = String::with_capacity(32 + self.state.len() * 40);
        text.push_str(HEADER);
        text.push('\n');
        for (e, hs) in &self.state {
            let leader = hs.leader.as_ref().map_or("-", |v| v.as_str());
            text.push_str(&format!("{e} {} {leader}\n", hs.epoch));
        }
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(FILE))?;
        fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

fn parse(text: &str) -> std::result::Result<BTreeMap<ElectionName, HardState>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!("the first line is not {HEADER:?}"));
    }
    let mut out = BTreeMap::new();
    for (n, line) in lines.enumerate() {
        let bad = |why: &str| format!("line {}: {why}", n + 2);
        let mut parts = line.split(' ');
        let (Some(e), Some(epoch), Some(leader), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected three fields"));
        };
        let e = ElectionName::new(e).map_err(|x| bad(&x.to_string()))?;
        let epoch = epoch.parse::<u64>().map_err(|x| bad(&x.to_string()))?;
        let leader = match leader {
            "-" => None,
            v => Some(NodeId::new(v).map_err(|x| bad(&x.to_string()))?),
        };
        out.insert(e, HardState { epoch, leader });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_epochs_and_accepted_leaders_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StateFile::open(dir.path()).unwrap();
        let e = ElectionName::new("backup").unwrap();
        let v = NodeId::new("n2").unwrap();
        f.save(vec![(
            e.clone(),
            HardState {
                epoch: 7,
                leader: Some(v.clone()),
            },
        )])
        .unwrap();
        let again = StateFile::open(dir.path()).unwrap();
        assert_eq!(
            again.state()[&e],
            HardState {
                epoch: 7,
                leader: Some(v)
            }
        );
    }

    #[test]
    fn a_corrupt_file_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(FILE),
            "elector-bully-state v1\nbackup seven -\n",
        )
        .unwrap();
        let err = StateFile::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("corrupt") && err.contains("line 2"), "{err}");
    }
}
