//! The one error type of the chaos instrument: why a run could not be made (as opposed
//! to what it found, which is a [`Report`](super::Report)).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a chaos run (or the child program) could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The options are unusable (an unknown backend or fault class, a bad number).
    #[error("{0}")]
    Usage(String),
    /// The `elector` binary is not where the options say.
    #[error(
        "the elector binary {} is missing or not executable: build it first with \
         `cargo build --release -p elector`, or pass --elector PATH",
        path.display()
    )]
    ElectorMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Something the run needs failed: a server, a process, a file, a socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// No child started within the deadline after the hosts were started, so there was
    /// nothing to inject faults into.
    #[error("no child started within {waited:?} after the hosts started; see the logs in {}", out.display())]
    NoLeader {
        /// How long the run waited.
        waited: Duration,
        /// Where the logs are.
        out: PathBuf,
    },
    /// The child program was started without its parameters or with bad ones.
    #[error("chaos child: {0}")]
    Child(String),
}

impl Error {
    /// An [`Error::Io`] saying what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// The result type of the chaos instrument.
pub type Result<T, E = Error> = std::result::Result<T, E>;
