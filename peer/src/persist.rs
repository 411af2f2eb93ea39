//! The state file: one number and one optional node id per election (Raft: term and
//! vote; Bully: highest epoch seen and the leader accepted at it).
//!
//! ```text
//! <header>
//! #floor <number>                      (only once an election was forgotten)
//! <election> <number> <node id or ->
//! ```
//! The floor is the highest number (term, epoch) of every election this node has
//! forgotten ([`StateFile::save_and_forget`]); an election created afterwards starts above
//! it, so forgetting never lets a node vote or accept twice at one number (decision record
//! 105). Forgetting always compacts, so the floor and the removals become durable together.
//! `#` cannot start an election name, and a binary that predates the floor refuses such a
//! file as corrupt rather than reading it without its floor.
//!
//! Changes are appended as lines (a later line for the same election wins) and fsynced
//! before [`StateFile::save`] returns. When the appended lines outnumber the elections
//! (plus 4096), the file is compacted: written whole to a temporary file, fsynced, renamed
//! over the old one, and the directory fsynced, so a crash leaves either the old or the new
//! file. A crash during an append can only leave a partial *last* line, which was never
//! synced and so never acted on: it is ignored on reading. A file written whole (one line
//! per election) reads the same, so files of earlier versions stay readable.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use election_core::{ElectionName, Error, NodeId, Result};

/// The start of the floor line.
const FLOOR: &str = "#floor ";

/// Appended lines allowed beyond the number of elections before a compaction.
const COMPACT_SLACK: usize = 4096;

/// Where and how a backend's state file is written, and what its errors say.
#[derive(Clone, Copy, Debug)]
pub struct StateFormat {
    /// The first line, naming the format and its version (`elector-raft-state v1`).
    pub header: &'static str,
    /// The file name inside the data dir (`raft-state`).
    pub file: &'static str,
    /// The setting named in errors (`raft.data_dir`).
    pub setting: &'static str,
    /// What the file holds, for the corruption error (`this node's terms and votes,`).
    pub holds: &'static str,
}

/// The durable state of one election, as a line of the state file.
pub trait PersistedState: Clone + Send + 'static {
    /// The file's format.
    const FORMAT: StateFormat;
    /// The number and the node id of the line.
    fn to_parts(&self) -> (u64, Option<&NodeId>);
    /// The state a line holds.
    fn from_parts(number: u64, node: Option<NodeId>) -> Self;
}

/// One node's durable state, kept in memory; changes are appended, the file compacted now
/// and then.
#[derive(Debug)]
pub struct StateFile<H> {
    dir: PathBuf,
    state: BTreeMap<ElectionName, H>,
    /// The highest number of every forgotten election.
    floor: u64,
    /// Open for appending, once the first save has compacted the file.
    append: Option<fs::File>,
    /// Lines appended since the last compaction.
    appended: usize,
    /// Appended lines allowed beyond the number of elections ([`COMPACT_SLACK`]).
    compact_slack: usize,
}

impl<H: PersistedState> StateFile<H> {
    /// Opens (creating the directory if needed) and reads the state file.
    ///
    /// # Errors
    /// [`Error::Config`] naming the data dir setting when the directory cannot be created
    /// or the file cannot be read or is corrupt (it is never reset).
    pub fn open(dir: &Path) -> Result<StateFile<H>> {
        let format = H::FORMAT;
        fs::create_dir_all(dir).map_err(|e| {
            Error::config(
                format.setting,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let path = dir.join(format.file);
        let (state, floor) = match fs::read_to_string(&path) {
            Ok(text) => parse(&text).map_err(|why| {
                Error::config(
                    format.setting,
                    format!(
                        "state file {} is corrupt ({why}); it holds {} so restore it rather than delete it",
                        path.display(),
                        format.holds
                    ),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (BTreeMap::new(), 0),
            Err(e) => {
                return Err(Error::config(
                    format.setting,
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        Ok(StateFile {
            dir: dir.to_owned(),
            state,
            floor,
            append: None,
            appended: 0,
            compact_slack: COMPACT_SLACK,
        })
    }

    /// The state as loaded.
    pub fn state(&self) -> &BTreeMap<ElectionName, H> {
        &self.state
    }

    /// The highest number (term, epoch) of every election forgotten so far: an election
    /// this node does not hold must start above it.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Removes `forget`, raises the floor to `floor` (never lowers it), then merges
    /// `changes` (so a name both forgotten and changed keeps its change), and makes it all
    /// durable with one atomic compaction before returning.
    ///
    /// # Errors
    /// Writing or syncing failed; nothing may be durable (the old file stays whole).
    pub fn save_and_forget(
        &mut self,
        changes: Vec<(ElectionName, H)>,
        forget: &[ElectionName],
        floor: u64,
    ) -> std::io::Result<()> {
        if forget.is_empty() && floor <= self.floor {
            return self.save(changes);
        }
        for e in forget {
            self.state.remove(e);
        }
        self.floor = self.floor.max(floor);
        for (e, hs) in changes {
            self.state.insert(e, hs);
        }
        self.compact()
    }

    /// Merges `changes` and makes them durable before returning. After a failure, the
    /// next call (with any changes, or none) rewrites the whole file, so what failed is
    /// retried and a torn line is never appended to.
    ///
    /// # Errors
    /// Writing or syncing failed; the changes may not be durable.
    pub fn save(&mut self, changes: Vec<(ElectionName, H)>) -> std::io::Result<()> {
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
                let appended = f.write_all(lines.as_bytes()).and_then(|()| f.sync_data());
                if appended.is_err() {
                    // A write that failed partway (a full disk) may have left part of a
                    // line; appending after it would make that line read as corrupt at the
                    // next start. The next save rewrites the whole file instead.
                    self.append = None;
                }
                appended?;
                self.appended += n;
                Ok(())
            }
            _ => self.compact(),
        }
    }

    /// Rewrites the whole state atomically and reopens the file for appending.
    fn compact(&mut self) -> std::io::Result<()> {
        let format = H::FORMAT;
        self.append = None;
        let mut text = String::with_capacity(32 + self.state.len() * 40);
        text.push_str(format.header);
        text.push('\n');
        if self.floor > 0 {
            text.push_str(FLOOR);
            text.push_str(itoa(self.floor, &mut [0u8; 20]));
            text.push('\n');
        }
        for (e, hs) in &self.state {
            push_line(&mut text, e, hs);
        }
        let tmp = self.dir.join(format!("{}.tmp", format.file));
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        let path = self.dir.join(format.file);
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir)?.sync_all()?;
        self.append = Some(fs::OpenOptions::new().append(true).open(&path)?);
        self.appended = 0;
        Ok(())
    }
}

fn push_line<H: PersistedState>(text: &mut String, e: &ElectionName, hs: &H) {
    let (number, node) = hs.to_parts();
    text.push_str(e.as_str());
    text.push(' ');
    text.push_str(itoa(number, &mut [0u8; 20]));
    text.push(' ');
    text.push_str(node.map_or("-", |v| v.as_str()));
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

type Parsed<H> = (BTreeMap<ElectionName, H>, u64);

fn parse<H: PersistedState>(text: &str) -> std::result::Result<Parsed<H>, String> {
    let header = H::FORMAT.header;
    if text.lines().next() != Some(header) {
        return Err(format!("the first line is not {header:?}"));
    }
    let mut out = BTreeMap::new();
    let mut floor = 0;
    // A partial last line is an append cut short by a crash, never synced: ignore it.
    let complete = if text.ends_with('\n') {
        text
    } else {
        &text[..text.rfind('\n').map_or(0, |i| i + 1)]
    };
    let lines = complete.lines().skip(1);
    for (n, line) in lines.enumerate() {
        let bad = |why: &str| format!("line {}: {why}", n + 2);
        if let Some(number) = line.strip_prefix(FLOOR) {
            let f = number.parse::<u64>().map_err(|x| bad(&x.to_string()))?;
            floor = floor.max(f);
            continue;
        }
        let mut parts = line.split(' ');
        let (Some(e), Some(number), Some(node), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected three fields"));
        };
        let e = ElectionName::new(e).map_err(|x| bad(&x.to_string()))?;
        let number = number.parse::<u64>().map_err(|x| bad(&x.to_string()))?;
        let node = match node {
            "-" => None,
            v => Some(NodeId::new(v).map_err(|x| bad(&x.to_string()))?),
        };
        out.insert(e, H::from_parts(number, node));
    }
    Ok((out, floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Hs {
        term: u64,
        vote: Option<NodeId>,
    }

    impl PersistedState for Hs {
        const FORMAT: StateFormat = StateFormat {
            header: "elector-test-state v1",
            file: "test-state",
            setting: "test.data_dir",
            holds: "test state,",
        };
        fn to_parts(&self) -> (u64, Option<&NodeId>) {
            (self.term, self.vote.as_ref())
        }
        fn from_parts(term: u64, vote: Option<NodeId>) -> Self {
            Hs { term, vote }
        }
    }

    #[test]
    fn saved_numbers_and_node_ids_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StateFile::<Hs>::open(dir.path()).unwrap();
        let e = ElectionName::new("backup").unwrap();
        let v = NodeId::new("n2").unwrap();
        let hs = Hs {
            term: 7,
            vote: Some(v),
        };
        f.save(vec![(e.clone(), hs.clone())]).unwrap();
        let again = StateFile::<Hs>::open(dir.path()).unwrap();
        assert_eq!(again.state()[&e], hs);
    }

    #[test]
    fn appended_changes_override_and_survive_compaction_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let e = ElectionName::new("backup").unwrap();
        let mut f = StateFile::<Hs>::open(dir.path()).unwrap();
        f.compact_slack = 5;
        for term in 1..=20 {
            f.save(vec![(e.clone(), Hs { term, vote: None })]).unwrap();
        }
        let last = 20;
        let reopened = StateFile::<Hs>::open(dir.path()).unwrap();
        assert_eq!(reopened.state()[&e].term, last);
        // A crash in the middle of an append leaves a partial line: ignored.
        let mut raw = fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("test-state"))
            .unwrap();
        raw.write_all(b"backup 99").unwrap();
        let reopened = StateFile::<Hs>::open(dir.path()).unwrap();
        assert_eq!(reopened.state()[&e].term, last);
    }

    #[test]
    fn a_file_written_whole_by_an_earlier_version_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("test-state"),
            "elector-test-state v1\nbackup 3 n1\nnightly 9 -\n",
        )
        .unwrap();
        let f = StateFile::<Hs>::open(dir.path()).unwrap();
        assert_eq!(f.state().len(), 2);
        assert_eq!(f.state()[&ElectionName::new("nightly").unwrap()].term, 9);
    }

    #[test]
    fn forgotten_elections_leave_the_file_and_the_floor_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StateFile::<Hs>::open(dir.path()).unwrap();
        let name = |i: u32| ElectionName::new(format!("e{i}")).unwrap();
        f.save(
            (0..100)
                .map(|i| {
                    (
                        name(i),
                        Hs {
                            term: 3,
                            vote: None,
                        },
                    )
                })
                .collect(),
        )
        .unwrap();
        let len_full = fs::metadata(dir.path().join("test-state")).unwrap().len();
        let forget: Vec<ElectionName> = (0..99).map(name).collect();
        // e5 is forgotten and re-created in the same batch: its change wins.
        f.save_and_forget(
            vec![(
                name(5),
                Hs {
                    term: 9,
                    vote: None,
                },
            )],
            &forget,
            3,
        )
        .unwrap();
        let again = StateFile::<Hs>::open(dir.path()).unwrap();
        assert_eq!(again.floor(), 3);
        assert_eq!(again.state().len(), 2);
        assert_eq!(again.state()[&name(5)].term, 9);
        let len_small = fs::metadata(dir.path().join("test-state")).unwrap().len();
        assert!(len_small * 10 < len_full, "{len_small} vs {len_full}");
        // The floor never goes down.
        let mut again = again;
        again.save_and_forget(Vec::new(), &[name(99)], 1).unwrap();
        assert_eq!(StateFile::<Hs>::open(dir.path()).unwrap().floor(), 3);
    }

    #[test]
    fn a_corrupt_file_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("test-state"),
            "elector-test-state v1\nbackup seven -\n",
        )
        .unwrap();
        let err = StateFile::<Hs>::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("corrupt") && err.contains("line 2") && err.contains("test.data_dir"),
            "{err}"
        );
    }
}
