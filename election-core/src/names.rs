use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Longest accepted [`ElectionName`], in bytes.
pub const MAX_ELECTION_NAME_LEN: usize = 128;
/// Longest accepted [`NodeId`], in bytes (the longest DNS name).
pub const MAX_NODE_ID_LEN: usize = 253;

/// The characters allowed in names: ASCII letters, digits, `.`, `_` and `-`, starting with
/// a letter or digit. They are safe in every backend's key space (Redis keys and hash
/// tags, etcd key paths, ZooKeeper znode names), in URLs and in environment variables'
/// values, so a name never needs escaping.
fn check(what: &'static str, value: &str, max: usize) -> Result<()> {
    let reason = if value.is_empty() {
        Some("must not be empty")
    } else if value.len() > max {
        return Err(Error::InvalidName {
            what,
            value: value.chars().take(40).collect::<String>() + "…",
            reason: format!("is {} bytes long; the limit is {max}", value.len()),
        });
    } else if !value.as_bytes()[0].is_ascii_alphanumeric() {
        Some("must start with an ASCII letter or digit")
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("may contain only ASCII letters, digits, '.', '_' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            what,
            value: value.to_owned(),
            reason: reason.to_owned(),
        }),
        None => Ok(()),
    }
}

macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value`; see the type's documentation for the rules.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                check($what, &value, $max)?;
                Ok(Self(value))
            }

            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

validated_name!(
    /// The name of one election, such as `nightly-backup`.
    ///
    /// 1 to 128 bytes of ASCII letters, digits, `.`, `_` and `-`, starting with a letter or
    /// digit. Every backend maps it into its key space without escaping.
    ElectionName,
    "election name",
    MAX_ELECTION_NAME_LEN
);

validated_name!(
    /// The identity of one node, such as its hostname `db-3.example`.
    ///
    /// 1 to 253 bytes of ASCII letters, digits, `.`, `_` and `-`, starting with a letter or
    /// digit. Node ids must be unique among the nodes of a deployment: two processes with the
    /// same id are indistinguishable to an observer (their epochs still differ).
    NodeId,
    "node id",
    MAX_NODE_ID_LEN
);

/// A node that takes part in an election.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Candidate {
    node: NodeId,
}

impl Candidate {
    /// A candidate for node `node`.
    pub fn new(node: NodeId) -> Self {
        Candidate { node }
    }

    /// The node this candidate speaks for.
    pub fn node(&self) -> &NodeId {
        &self.node
    }
}

impl From<NodeId> for Candidate {
    fn from(node: NodeId) -> Self {
        Candidate::new(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for ok in ["nightly-backup", "a", "db-3.example", "job_1", "0"] {
            ElectionName::new(ok).unwrap();
            NodeId::new(ok).unwrap();
        }
        ElectionName::new("x".repeat(MAX_ELECTION_NAME_LEN)).unwrap();
    }

    #[test]
    fn bad_names_are_refused_with_the_rule_they_broke() {
        let cases = [
            ("", "must not be empty"),
            ("-job", "must start with"),
            (".hidden", "must start with"),
            ("a/b", "may contain only"),
            ("a b", "may contain only"),
            ("a{tag}", "may contain only"),
            ("é", "must start with"),
        ];
        for (bad, rule) in cases {
            let err = ElectionName::new(bad).unwrap_err().to_string();
            assert!(
                err.contains("election name") && err.contains(rule),
                "{bad:?}: {err}"
            );
        }
        let err = ElectionName::new("x".repeat(MAX_ELECTION_NAME_LEN + 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the limit is 128"), "{err}");
    }

    #[test]
    fn names_deserialize_through_validation() {
        let ok: ElectionName = serde_json::from_str("\"job\"").unwrap();
        assert_eq!(ok.as_str(), "job");
        assert!(serde_json::from_str::<ElectionName>("\"a/b\"").is_err());
    }
}
