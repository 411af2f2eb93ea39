//! The znode layout of an election and conversions from what ZooKeeper stores to our types.

use election_core::{ElectionName, NodeId};

/// The name every candidate's znode starts with; ZooKeeper appends the sequence number.
pub(crate) const CANDIDATE_PREFIX: &str = "n_";

/// The znode of one election: `<prefix>/<election>`.
pub(crate) fn election_dir(prefix: &str, election: &ElectionName) -> String {
    format!("{prefix}/{election}")
}

/// The path to create an EPHEMERAL_SEQUENTIAL candidate under: `<dir>/n_`.
pub(crate) fn candidate_base(dir: &str) -> String {
    format!("{dir}/{CANDIDATE_PREFIX}")
}

/// One candidate znode, as listed under the election's znode.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Child {
    /// The sequence number ZooKeeper gave it (the queue order).
    pub(crate) seq: i64,
    /// Its name under the election's znode, such as `n_0000000007`.
    pub(crate) name: String,
}

impl Child {
    /// Its full path under `dir`.
    pub(crate) fn path(&self, dir: &str) -> String {
        format!("{dir}/{}", self.name)
    }
}

/// Parses the children of an election's znode into candidates sorted by sequence. A child
/// that is not `n_<digits>` was not created by this backend: its name is returned as the
/// error.
pub(crate) fn parse_children(names: Vec<String>) -> Result<Vec<Child>, String> {
    let mut children = Vec::with_capacity(names.len());
    for name in names {
        let seq = name
            .strip_prefix(CANDIDATE_PREFIX)
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<i64>().ok());
        match seq {
            Some(seq) => children.push(Child { seq, name }),
            None => return Err(name),
        }
    }
    children.sort();
    Ok(children)
}

/// The node id stored in a candidate's data, or `None` if it is not a valid node id (the
/// znode was not written by this backend).
pub(crate) fn node_from_data(data: &[u8]) -> Option<NodeId> {
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| NodeId::new(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_sort_by_sequence_not_by_name() {
        let c = parse_children(vec![
            "n_0000000010".into(),
            "n_0000000009".into(),
            "n_2147483648".into(),
        ])
        .unwrap();
        let seqs: Vec<i64> = c.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [9, 10, 2_147_483_648]);
        assert_eq!(c[0].path("/elector/job"), "/elector/job/n_0000000009");
    }

    #[test]
    fn a_foreign_child_is_reported_by_name() {
        for bad in ["lock", "n_", "n_12a", "x_0000000001"] {
            assert_eq!(
                parse_children(vec!["n_0000000001".into(), bad.into()]),
                Err(bad.to_owned())
            );
        }
    }

    #[test]
    fn only_valid_node_ids_are_read_from_data() {
        assert_eq!(node_from_data(b"db-3").unwrap().as_str(), "db-3");
        assert!(node_from_data(b"").is_none());
        assert!(node_from_data(b"a b").is_none());
        assert!(node_from_data(&[0xff, 0x00]).is_none());
    }
}
