//! Key and channel names: one hash tag per election, so an election lives in one Cluster slot.

use election_core::ElectionName;

/// The Redis names one election uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Keys {
    /// A hash: `token`, `node`, `epoch`, `since` (server ms), with the lease as its TTL.
    pub(crate) leader: String,
    /// A string counter: the highest epoch handed out. No TTL.
    pub(crate) epoch: String,
    /// The pub/sub channel told of every acquisition and release.
    pub(crate) channel: String,
}

const LEADER: &str = ":leader";
const EPOCH: &str = ":epoch";
const CHANNEL: &str = ":channel";

impl Keys {
    pub(crate) fn new(prefix: &str, election: &ElectionName) -> Keys {
        let tag = format!("{{{prefix}{election}}}");
        Keys {
            leader: format!("{tag}{LEADER}"),
            epoch: format!("{tag}{EPOCH}"),
            channel: format!("{tag}{CHANNEL}"),
        }
    }
}

/// Subscription patterns for all elections under one prefix, and the reverse mapping from a
/// channel name back to the election.
#[derive(Clone, Debug)]
pub(crate) struct Patterns {
    prefix: String,
    keyspace: String,
}

impl Patterns {
    pub(crate) fn new(prefix: &str, database: i64) -> Patterns {
        Patterns {
            prefix: prefix.to_owned(),
            keyspace: format!("__keyspace@{database}__:"),
        }
    }

    /// The pattern matching every election's channel.
    pub(crate) fn channels(&self) -> String {
        format!("{{{}*}}{CHANNEL}", glob_escape(&self.prefix))
    }

    /// The pattern matching keyspace events of every election's leader key.
    pub(crate) fn keyspace_events(&self) -> String {
        format!(
            "{}{{{}*}}{LEADER}",
            glob_escape(&self.keyspace),
            glob_escape(&self.prefix)
        )
    }

    /// The election a message concerns, if it is one of ours and could mean the lease
    /// is gone. Keyspace events other than expiry or deletion (a server with `KEA` sends
    /// one for every renewal) are ignored.
    pub(crate) fn election_to_wake(&self, channel: &str, payload: &[u8]) -> Option<String> {
        if channel.starts_with(&self.keyspace)
            && !matches!(payload, b"expired" | b"evicted" | b"del")
        {
            return None;
        }
        self.election_of(channel)
    }

    /// The election a message on `channel` concerns, if it is one of ours.
    pub(crate) fn election_of(&self, channel: &str) -> Option<String> {
        let (inner, suffix) = match channel.strip_prefix(&self.keyspace) {
            Some(key) => (key, LEADER),
            None => (channel, CHANNEL),
        };
        let tag = inner.strip_suffix(suffix)?;
        let name = tag.strip_prefix('{')?.strip_suffix('}')?;
        let name = name.strip_prefix(&self.prefix)?;
        ElectionName::new(name).ok().map(|n| n.as_str().to_owned())
    }
}

/// Escapes Redis glob specials (`*`, `?`, `[`, `]`, `\`).
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ElectionName {
        ElectionName::new(s).unwrap()
    }

    #[test]
    fn all_keys_of_an_election_share_one_hash_tag() {
        let k = Keys::new("elector:", &name("backup"));
        assert_eq!(k.leader, "{elector:backup}:leader");
        assert_eq!(k.epoch, "{elector:backup}:epoch");
        assert_eq!(k.channel, "{elector:backup}:channel");
    }

    #[test]
    fn a_channel_or_keyspace_event_maps_back_to_its_election() {
        let p = Patterns::new("elector:", 3);
        let k = Keys::new("elector:", &name("a.b-c"));
        assert_eq!(p.election_of(&k.channel).as_deref(), Some("a.b-c"));
        let event = format!("__keyspace@3__:{}", k.leader);
        assert_eq!(p.election_of(&event).as_deref(), Some("a.b-c"));
        assert_eq!(p.election_of("__keyspace@3__:{elector:x}:epoch"), None);
        assert_eq!(p.election_of("{other:x}:channel"), None);
        assert_eq!(p.election_of("{elector:}:channel"), None);
        assert_eq!(p.election_of("garbage"), None);
    }

    #[test]
    fn only_keyspace_events_that_end_a_lease_wake_waiters() {
        let p = Patterns::new("elector:", 0);
        let key = "__keyspace@0__:{elector:job}:leader";
        assert_eq!(p.election_to_wake(key, b"expired").as_deref(), Some("job"));
        assert_eq!(p.election_to_wake(key, b"del").as_deref(), Some("job"));
        assert_eq!(p.election_to_wake(key, b"pexpire"), None);
        assert_eq!(p.election_to_wake(key, b"hset"), None);
        let channel = "{elector:job}:channel";
        assert_eq!(
            p.election_to_wake(channel, b"acquired 5 a").as_deref(),
            Some("job")
        );
    }

    #[test]
    fn patterns_escape_glob_specials_in_the_prefix() {
        let p = Patterns::new("a*b:", 0);
        assert_eq!(p.channels(), "{a\\*b:*}:channel");
        assert_eq!(p.keyspace_events(), "__keyspace@0__:{a\\*b:*}:leader");
    }
}
