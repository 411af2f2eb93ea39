//! The state file: term and vote per election, replaced atomically.
//!
//! ```text
//! elector-raft-state v1
//! <election> <term> <vote node id or ->
//! ```
//! Written as a temporary file, fsynced, renamed over the old one, and the directory
//! fsynced, so a crash leaves either the old or the new file, never a mix.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use election_core::{ElectionName, Error, NodeId, Result};

use crate::core::HardState;

const HEADER: &str = "elector-raft-state v1";
const FILE: &str = "raft-state";

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
                "raft.data_dir",
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let path = dir.join(FILE);
        let state = match fs::read_to_string(&path) {
            Ok(text) => parse(&text).map_err(|why| {
                Error::config(
                    "raft.data_dir",
                    format!(
                        "state file {} is corrupt ({why}); it holds this node's terms and votes, \
                         so restore it rather than delete it",
                        path.display()
                    ),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(Error::config(
                    "raft.data_dir",
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
            let vote = hs.vote.as_ref().map_or("-", |v| v.as_str());
            text.push_str(e.as_str());
            text.push(' ');
            text.push_str(itoa(hs.term, &mut [0u8; 20]));
            text.push(' ');
            text.push_str(vote);
            text.push('\n');
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

/// `n` in decimal, without allocating.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("ASCII digits")
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
        let (Some(e), Some(term), Some(vote), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected three fields"));
        };
        let e = ElectionName::new(e).map_err(|x| bad(&x.to_string()))?;
        let term = term.parse::<u64>().map_err(|x| bad(&x.to_string()))?;
        let vote = match vote {
            "-" => None,
            v => Some(NodeId::new(v).map_err(|x| bad(&x.to_string()))?),
        };
        out.insert(e, HardState { term, vote });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_terms_and_votes_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StateFile::open(dir.path()).unwrap();
        let e = ElectionName::new("backup").unwrap();
        let v = NodeId::new("n2").unwrap();
        f.save(vec![(
            e.clone(),
            HardState {
                term: 7,
                vote: Some(v.clone()),
            },
        )])
        .unwrap();
        let again = StateFile::open(dir.path()).unwrap();
        assert_eq!(
            again.state()[&e],
            HardState {
                term: 7,
                vote: Some(v)
            }
        );
    }

    #[test]
    fn a_corrupt_file_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(FILE),
            "elector-raft-state v1\nbackup seven -\n",
        )
        .unwrap();
        let err = StateFile::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("corrupt") && err.contains("line 2"), "{err}");
    }
}
