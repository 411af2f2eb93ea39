//! The backend kinds elector knows, whether compiled into this binary or not.

use std::fmt;
use std::str::FromStr;

/// A backend kind, as written in `[backend] kind`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// Raft among the agents (`election-raft`).
    Raft,
    /// Bully among the agents (`election-bully`).
    Bully,
    /// PaxosLease among the agents (`election-paxos`).
    Paxos,
    /// A lease in Redis (`election-redis`).
    Redis,
    /// A lease in etcd (`election-etcd`).
    Etcd,
    /// An ephemeral znode in ZooKeeper (`election-zookeeper`).
    ZooKeeper,
    /// A lease row in PostgreSQL (`election-postgres`).
    Postgres,
}

impl Kind {
    /// Every kind, in the order error messages list them.
    pub(crate) const ALL: [Kind; 7] = [
        Kind::Raft,
        Kind::Bully,
        Kind::Paxos,
        Kind::Redis,
        Kind::Etcd,
        Kind::ZooKeeper,
        Kind::Postgres,
    ];

    /// The name, as in `[backend] kind` and `[backend.KIND]` (and the cargo feature).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Kind::Raft => "raft",
            Kind::Bully => "bully",
            Kind::Paxos => "paxos",
            Kind::Redis => "redis",
            Kind::Etcd => "etcd",
            Kind::ZooKeeper => "zookeeper",
            Kind::Postgres => "postgres",
        }
    }

    /// Whether this host's member lives in `elector agent` (the peer backends), so that
    /// `elector run` and `status` reach it through the agent rather than directly.
    pub(crate) const fn is_hosted_by_agent(self) -> bool {
        matches!(self, Kind::Raft | Kind::Bully | Kind::Paxos)
    }

    /// Whether this binary was built with the kind's cargo feature.
    pub(crate) const fn is_compiled_in(self) -> bool {
        match self {
            Kind::Raft => cfg!(feature = "raft"),
            Kind::Bully => cfg!(feature = "bully"),
            Kind::Paxos => cfg!(feature = "paxos"),
            Kind::Redis => cfg!(feature = "redis"),
            Kind::Etcd => cfg!(feature = "etcd"),
            Kind::ZooKeeper => cfg!(feature = "zookeeper"),
            Kind::Postgres => cfg!(feature = "postgres"),
        }
    }

    /// Every kind's name, comma-separated, for error messages.
    pub(crate) fn all_names() -> String {
        Kind::ALL.map(Kind::as_str).join(", ")
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`Kind::ALL`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnknownKind;

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(UnknownKind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_from_its_own_name_and_nothing_else_does() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        for other in ["memory", "Raft", "consul", ""] {
            assert_eq!(other.parse::<Kind>(), Err(UnknownKind), "{other}");
        }
        assert_eq!(
            Kind::all_names(),
            "raft, bully, paxos, redis, etcd, zookeeper, postgres"
        );
    }

    #[test]
    fn only_the_peer_backends_are_hosted_by_the_agent() {
        let hosted: Vec<_> = Kind::ALL
            .into_iter()
            .filter(|k| k.is_hosted_by_agent())
            .collect();
        assert_eq!(hosted, [Kind::Raft, Kind::Bully, Kind::Paxos]);
    }
}
