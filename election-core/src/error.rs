use std::fmt;

use crate::{ElectionName, Epoch, LossReason};

/// A boxed error from a client library, kept as the source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in an election, with kinds a caller can act on.
///
/// Messages name the backend, its address and the election where they apply, so one log
/// line is enough to know where to look. See [`Error::kind`] for the coarse class.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend could not be reached or did not answer in time. Retrying later may work.
    #[error("{backend} at {address} is unavailable{}: {detail}", for_election(.election))]
    Unavailable {
        /// Backend kind, such as `redis`.
        backend: &'static str,
        /// The address that was tried.
        address: String,
        /// The election concerned, if one was.
        election: Option<ElectionName>,
        /// What failed, in words.
        detail: String,
        /// The client library's error.
        #[source]
        source: Option<BoxError>,
    },

    /// A setting is missing, malformed or unsafe. Fix the configuration; retrying won't help.
    #[error("invalid configuration: {key}: {reason}")]
    Config {
        /// The setting, as a dotted path such as `timing.ttl`.
        key: String,
        /// Which rule failed, and why it matters.
        reason: String,
    },

    /// The backend answered something unexpected (wrong data type under our key, an
    /// unknown message, a refused credential).
    #[error("{backend} at {address}: {detail}{}", for_election(.election))]
    Protocol {
        /// Backend kind, such as `etcd`.
        backend: &'static str,
        /// The server's address.
        address: String,
        /// The election concerned, if one was.
        election: Option<ElectionName>,
        /// What was wrong.
        detail: String,
    },

    /// Leadership was lost while an operation needed it.
    #[error("leadership of {election} at epoch {epoch} was lost: {reason}")]
    Lost {
        /// The election.
        election: ElectionName,
        /// The epoch that was held.
        epoch: Epoch,
        /// Why it ended.
        reason: LossReason,
    },

    /// A fenced resource refused an epoch below one it already admitted: a newer leader
    /// exists and this one must stop writing.
    #[error("stale epoch {epoch}: epoch {highest} was already admitted, so a newer leader exists")]
    StaleEpoch {
        /// The refused epoch.
        epoch: Epoch,
        /// The highest epoch admitted so far.
        highest: Epoch,
    },

    /// An election name or node id broke the naming rules.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// `election name` or `node id`.
        what: &'static str,
        /// The refused value (shortened when very long).
        value: String,
        /// The rule it broke.
        reason: String,
    },

    /// The node already keeps state for its configured maximum of elections and refuses a
    /// new one. Idle elections are forgotten after a while, so a later attempt may
    /// succeed; raising `max_elections` is the lasting fix.
    #[error(
        "{backend}: cannot start election {election}: this node already holds its maximum of \
         {limit} elections (setting {backend}.max_elections); idle ones are forgotten after \
         {backend}.forget_after"
    )]
    TooManyElections {
        /// Backend kind.
        backend: &'static str,
        /// The refused election.
        election: ElectionName,
        /// The configured maximum.
        limit: usize,
    },

    /// The elector, or the backend connection behind it, was shut down.
    #[error("{backend}: the elector for {election} is closed")]
    Closed {
        /// Backend kind.
        backend: &'static str,
        /// The election.
        election: ElectionName,
    },
}

fn for_election(e: &Option<ElectionName>) -> String {
    match e {
        Some(e) => format!(" (election {e})"),
        None => String::new(),
    }
}

/// The coarse class of an [`Error`]: what a caller should do about it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Retry later: the backend is unreachable or slow, or holds its maximum of elections.
    Unavailable,
    /// Fix the configuration or input.
    Config,
    /// The backend misbehaved or refused us; an operator should look.
    Protocol,
    /// Leadership ended; stop guarded work.
    Lost,
    /// A newer leader exists; stop guarded work.
    StaleEpoch,
    /// The elector was shut down.
    Closed,
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Unavailable { .. } | Error::TooManyElections { .. } => ErrorKind::Unavailable,
            Error::Config { .. } | Error::InvalidName { .. } => ErrorKind::Config,
            Error::Protocol { .. } => ErrorKind::Protocol,
            Error::Lost { .. } => ErrorKind::Lost,
            Error::StaleEpoch { .. } => ErrorKind::StaleEpoch,
            Error::Closed { .. } => ErrorKind::Closed,
        }
    }

    /// Whether the same call may succeed later without any change.
    pub fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }

    /// Shorthand for [`Error::Unavailable`].
    pub fn unavailable(
        backend: &'static str,
        address: impl Into<String>,
        election: Option<&ElectionName>,
        detail: impl fmt::Display,
        source: Option<BoxError>,
    ) -> Self {
        Error::Unavailable {
            backend,
            address: address.into(),
            election: election.cloned(),
            detail: detail.to_string(),
            source,
        }
    }

    /// Shorthand for [`Error::Protocol`].
    pub fn protocol(
        backend: &'static str,
        address: impl Into<String>,
        election: Option<&ElectionName>,
        detail: impl fmt::Display,
    ) -> Self {
        Error::Protocol {
            backend,
            address: address.into(),
            election: election.cloned(),
            detail: detail.to_string(),
        }
    }

    /// Shorthand for [`Error::Config`].
    pub fn config(key: impl Into<String>, reason: impl fmt::Display) -> Self {
        Error::Config {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}
