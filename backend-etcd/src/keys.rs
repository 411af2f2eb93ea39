//! The key layout shared with etcd's `concurrency.Election` (and so `etcdctl elect`), and
//! conversions from what etcd stores to our types.

use std::time::Duration;

use election_core::{ElectionName, Error, MAX_NODE_ID_LEN, NodeId, Result};

/// The directory of one election: `<prefix><election>/`. etcd's `NewElection(s, pfx)`
/// uses `pfx + "/"`, so `etcdctl elect <prefix><election>` shares it.
pub(crate) fn election_dir(prefix: &str, election: &ElectionName) -> String {
    format!("{prefix}{election}/")
}

/// A candidate's key: the election directory and its lease id in lower-case hex without
/// padding, exactly as etcd's `fmt.Sprintf("%s%x", keyPrefix, leaseID)`.
pub(crate) fn candidate_key(dir: &str, lease: i64) -> String {
    format!("{dir}{lease:x}")
}

/// etcd lease TTLs are whole seconds: `ttl` rounded up, at least 1 s. The server keeps the
/// lease at least as long as the holder's own deadline assumes, never shorter.
pub(crate) fn ttl_seconds(ttl: Duration) -> Result<i64> {
    /// etcd's `MaxLeaseTTL` (9,000,000,000 s).
    const MAX_TTL: u64 = 9_000_000_000;
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    if secs > MAX_TTL {
        return Err(Error::config(
            "timing.ttl",
            format!(
                "{} s is longer than etcd's maximum lease TTL of {MAX_TTL} s",
                secs
            ),
        ));
    }
    // `secs <= MAX_TTL` fits in i64.
    Ok(secs.max(1) as i64)
}

/// The node id a candidate's value names. Our candidates store their node id verbatim;
/// another client (`etcdctl elect NAME VALUE`) may store anything, so a value that is not
/// a valid node id is mapped to one: disallowed bytes become `_`, it is cut to the length
/// limit, and an empty value reads as `unnamed`.
pub(crate) fn node_from_value(value: &[u8]) -> NodeId {
    if let Ok(Ok(node)) = std::str::from_utf8(value).map(NodeId::new) {
        return node;
    }
    if value.is_empty() {
        return NodeId::new("unnamed").expect("a valid literal node id");
    }
    let mut s: String = value
        .iter()
        .take(MAX_NODE_ID_LEN)
        .map(|&b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    if !s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric) {
        s.insert(0, 'x');
        s.truncate(MAX_NODE_ID_LEN);
    }
    NodeId::new(s).expect("only allowed characters, starting alphanumeric, within the limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_etcd_concurrency_election_layout() {
        let name = ElectionName::new("nightly-backup").unwrap();
        let dir = election_dir("elector/", &name);
        assert_eq!(dir, "elector/nightly-backup/");
        // etcdctl elect wrote myel/390da21fdef9c805 for lease 4111120292627728389.
        assert_eq!(
            candidate_key("myel/", 4111120292627728389),
            "myel/390da21fdef9c805"
        );
        assert_eq!(candidate_key("p/", 0x2a), "p/2a");
    }

    #[test]
    fn no_election_dir_is_a_prefix_of_another() {
        // Names cannot contain '/', so "a/" never prefixes "ab/"'s keys.
        let a = election_dir("e/", &ElectionName::new("a").unwrap());
        let ab = election_dir("e/", &ElectionName::new("ab").unwrap());
        assert!(!ab.starts_with(&a));
    }

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(Duration::from_millis(1000)).unwrap(), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1001)).unwrap(), 2);
        assert_eq!(ttl_seconds(Duration::from_millis(300)).unwrap(), 1);
        assert_eq!(ttl_seconds(Duration::from_secs(10)).unwrap(), 10);
        assert!(ttl_seconds(Duration::from_secs(u64::MAX)).is_err());
    }

    #[test]
    fn any_value_reads_as_a_valid_node_id() {
        assert_eq!(node_from_value(b"db-3.example").as_str(), "db-3.example");
        assert_eq!(node_from_value(b"hello world").as_str(), "hello_world");
        assert_eq!(node_from_value(b"").as_str(), "unnamed");
        assert_eq!(node_from_value(b"-x").as_str(), "x-x");
        assert_eq!(node_from_value(&[0xff, 0xfe]).as_str(), "x__");
        assert_eq!(
            node_from_value(&[b'a'; 1000]).as_str().len(),
            MAX_NODE_ID_LEN
        );
        assert_eq!(
            node_from_value(&[b'/'; 1000]).as_str().len(),
            MAX_NODE_ID_LEN
        );
    }
}
