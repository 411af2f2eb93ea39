//! The znode layout of an election and conversions from what ZooKeeper stores to our types.

use election_core::{ElectionName, NodeId};

/// What a candidate's name ends with before ZooKeeper's sequence number: kazoo's `Lock`
/// (and so `Election`) recipe names its contenders `<uuid hex>__lock__<sequence>` and orders
/// every child that ends so by the sequence. Ours look the same (with our own random
/// prefix), so kazoo's contenders and ours queue together in one election.
pub(crate) const LOCK_MARK: &str = "__lock__";

/// The name this backend's candidates had before they were kazoo's: `n_<sequence>`. Still
/// read (an election a host of the previous version queued in), never written.
pub(crate) const LEGACY_PREFIX: &str = "n_";

/// The znode of one election: `<prefix>/<election>`.
pub(crate) fn election_dir(prefix: &str, election: &ElectionName) -> String {
    format!("{prefix}/{election}")
}

/// The path to create an EPHEMERAL_SEQUENTIAL candidate under: `<dir>/<random>__lock__`,
/// as kazoo's `Lock` does (`uuid4().hex` there; 128 random bits in hex here), so that
/// every candidacy's name is its own.
pub(crate) fn candidate_base(dir: &str) -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy is a broken host; the name only has to differ from kazoo's own.
        bytes = std::process::id().to_le_bytes().repeat(4)[..16]
            .try_into()
            .unwrap_or_default();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{dir}/{hex}{LOCK_MARK}")
}

/// One candidate znode, as listed under the election's znode.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Child {
    /// The sequence number ZooKeeper gave it (the queue order).
    pub(crate) seq: i64,
    /// Its name under the election's znode, such as `3f…9a__lock__0000000007`.
    pub(crate) name: String,
}

impl Child {
    /// Its full path under `dir`.
    pub(crate) fn path(&self, dir: &str) -> String {
        format!("{dir}/{}", self.name)
    }
}

/// The sequence of a candidate's name: kazoo's `…__lock__<10 digits>` (the digits may carry
/// a `-`, as a sequence past 2³¹ does), or this backend's earlier `n_<digits>`.
fn sequence(name: &str) -> Option<i64> {
    let digits = match name.rfind(LOCK_MARK) {
        Some(at) => {
            let d = &name[at + LOCK_MARK.len()..];
            let unsigned = d.strip_prefix('-').unwrap_or(d);
            (unsigned.len() == 10).then_some(d)?
        }
        None => name.strip_prefix(LEGACY_PREFIX)?,
    };
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The candidates among an election's children, sorted by sequence (the queue order, as
/// kazoo sorts them). Children that are not candidates (kazoo's read-lock `__rlock__`
/// nodes, anything else) are not in the queue, as kazoo's `Lock` ignores them too.
pub(crate) fn parse_children(names: Vec<String>) -> Vec<Child> {
    let mut children: Vec<Child> = names
        .into_iter()
        .filter_map(|name| sequence(&name).map(|seq| Child { seq, name }))
        .collect();
    children.sort();
    children
}

/// The node id stored in a candidate's data, or `None` if it is not a valid node id.
pub(crate) fn node_from_data(data: &[u8]) -> Option<NodeId> {
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| NodeId::new(s).ok())
}

/// Who a candidate is, for reports: its data as a node id, as every candidate of this
/// backend writes it; a kazoo contender's identifier (any text, or none) made into one:
/// characters a node id may not hold become `-`, and a contender without an identifier is
/// `kazoo-<sequence>`.
pub(crate) fn contender(data: &[u8], seq: i64) -> NodeId {
    if let Some(id) = node_from_data(data) {
        return id;
    }
    let text = String::from_utf8_lossy(data);
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(election_core::MAX_NODE_ID_LEN)
        .collect();
    let cleaned = cleaned.trim_matches(['-', '.', '_']);
    NodeId::new(cleaned)
        .or_else(|_| NodeId::new(format!("kazoo-{seq}")))
        .unwrap_or_else(|_| NodeId::new("kazoo").expect("a valid node id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_sort_by_sequence_not_by_name() {
        let c = parse_children(vec![
            "ffff__lock__0000000010".into(),
            "0000__lock__0000000009".into(),
            "n_0000000011".into(),
            "abcd__lock__2147483648".into(),
        ]);
        let seqs: Vec<i64> = c.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [9, 10, 11, 2_147_483_648]);
        assert_eq!(
            c[0].path("/elector/job"),
            "/elector/job/0000__lock__0000000009"
        );
    }

    #[test]
    fn what_kazoo_does_not_queue_is_not_a_candidate() {
        let c = parse_children(vec![
            "x__lock__0000000001".into(),
            "lock".into(),
            "n_".into(),
            "n_12a".into(),
            "x__rlock__0000000002".into(),
            "x__lock__123".into(),
            "x__lock__000000000a".into(),
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].seq, 1);
    }

    #[test]
    fn our_candidates_are_named_like_kazoos_and_each_differently() {
        let a = candidate_base("/elector/job");
        let b = candidate_base("/elector/job");
        assert!(
            a.starts_with("/elector/job/") && a.ends_with("__lock__"),
            "{a}"
        );
        assert_ne!(a, b);
        assert!(sequence(&format!("{}0000000042", &a["/elector/job/".len()..])) == Some(42));
    }

    #[test]
    fn a_contenders_identifier_becomes_a_node_id() {
        assert_eq!(contender(b"db-3", 1).as_str(), "db-3");
        assert_eq!(contender(b"worker 7 (py)", 1).as_str(), "worker-7--py");
        assert_eq!(contender(b"", 12).as_str(), "kazoo-12");
        assert_eq!(contender(&[0xff, 0x00], 5).as_str(), "kazoo-5");
        assert!(node_from_data(b"a b").is_none());
    }
}
