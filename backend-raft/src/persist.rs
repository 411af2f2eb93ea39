//! The state file: term and vote per election.
//!
//! ```text
//! elector-raft-state v1
//! <election> <term> <vote node id or ->
//! ```
//! Changes are appended as lines (a later line for the same election wins) and fsynced
//! before `save` returns. When the appended lines outnumber the elections (plus 4096), the
//! file is compacted: written whole to a temporary file, fsynced, renamed over the old one,
//! and the directory fsynced, so a crash leaves either the old or the new file. A crash
//! during an append can only leave a partial *last* line, which was never synced and so
//! never acted on: it is ignored on reading.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use election_core::{ElectionName, Error, NodeId, Result};

use crate::core::HardState;

const HEADER: &str = "elector-raft-state v1";
const FILE: &str = "raft-state";

/// Appended lines allowed beyond the number of elections before a compaction.
const COMPACT_SLACK: usize = 4096;

/// One node's durable state, kept in memory; changes are appended, the file compacted now
/// and then.
#[derive(Debug)]
pub(crate) struct StateFile {
    dir: PathBuf,
    state: BTreeMap<ElectionName, HardState>,
    /// Open for appending, once the first save has compacted the file.
    append: Option<fs::File>,
    /// Lines appended since the last compaction.
    appended: usize,
    /// Appended lines allowed beyond the number of elections ([`COMPACT_SLACK`]).
    compact_slack: usize,
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
            append: None,
            appended: 0,
            compact_slack: COMPACT_SLACK,
        })
    }

    /// The state as loaded.
    pub(crate) fn state(&self) -> &BTreeMap<ElectionName, HardState> {
        &self.state
    }

    /// Merges `changes` and makes them durable before returning.
    pub(crate) fn save(&mut self, changes: Vec<(ElectionName, HardState)>) -> std::io::Result<()> {
        let mut lines = String::with_capacity(changes.len() * 40);
        for (e, hs) in &changes {
            push_line(&mut lines, e, hs);
        }
        let n = changes.len();
        for (e, hs) in changes {
            self.state.insert(e, hs);
        }
        match &mut self.append {
            Some(f) if self.appended + n <= self.state.len() + self.compact_slack => {
                f.write_all(lines.as_bytes())?;
                f.sync_data()?;
                self.appended += n;
                Ok(())
            }
            _ => self.compact(),
        }
    }

    /// Rewrites the whole state atomically and reopens the file for appending.
    fn compact(&mut self) -> std::io::Result<()> {
        self.append = None;
        let mut text = String::with_capacity(32 + self.state.len() * 40);
        text.push_str(HEADER);
        text.push('\n');
        for (e, hs) in &self.state {
            push_line(&mut text, e, hs);
        }
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        let path = self.dir.join(FILE);
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir)?.sync_all()?;
        self.append = Some(fs::OpenOptions::new().append(true).open(&path)?);
        self.appended = 0;
        Ok(())
    }
}

fn push_line(text: &mut String, e: &ElectionName, hs: &HardState) {
    text.push_str(e.as_str());
    text.push(' ');
    text.push_str(itoa(hs.term, &mut [0u8; 20]));
    text.push(' ');
    text.push_str(hs.vote.as_ref().map_or("-", |v| v.as_str()));
    text.push('\n');
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
    if text.lines().next() != Some(HEADER) {
        return Err(format!("the first line is not {HEADER:?}"));
    }
    let mut out = BTreeMap::new();
    // A partial last line is an append cut short by a crash, never synced: ignore it.
    let complete = if text.ends_with('\n') {
        text
    } else {
        &text[..text.rfind('\n').map_or(0, |i| i + 1)]
    };
    let lines = complete.lines().skip(1);
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
    fn appended_changes_override_and_survive_compaction_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let e = ElectionName::new("backup").unwrap();
        let mut f = StateFile::open(dir.path()).unwrap();
        f.compact_slack = 5;
        for term in 1..=20 {
            f.save(vec![(e.clone(), HardState { term, vote: None })])
                .unwrap();
        }
        let last = 20;
        assert_eq!(StateFile::open(dir.path()).unwrap().state()[&e].term, last);
        // A crash in the middle of an append leaves a partial line: ignored.
        let mut raw = fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .unwrap();
        raw.write_all(b"backup 99").unwrap();
        assert_eq!(StateFile::open(dir.path()).unwrap().state()[&e].term, last);
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
