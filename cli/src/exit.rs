//! Exit codes (sysexits where one fits) and the error type that carries one.

use election_core::ErrorKind;

/// `EX_USAGE`: bad command line.
pub(crate) const USAGE: u8 = 64;
/// `EX_UNAVAILABLE`: the backend (or the local agent) cannot be reached.
pub(crate) const UNAVAILABLE: u8 = 69;
/// `EX_SOFTWARE`: an internal error in elector.
pub(crate) const SOFTWARE: u8 = 70;
/// `EX_TEMPFAIL`: leadership was lost while the command ran, so it was killed.
pub(crate) const LOST: u8 = 75;
/// `EX_PROTOCOL`: the backend answered something unexpected.
pub(crate) const PROTOCOL: u8 = 76;
/// `EX_CONFIG`: configuration error.
pub(crate) const CONFIG: u8 = 78;
/// The command exists but cannot be executed (as in the shell).
pub(crate) const NOT_EXECUTABLE: u8 = 126;
/// The command was not found (as in the shell).
pub(crate) const NOT_FOUND: u8 = 127;

/// The exit-code table printed in `--help`.
pub(crate) const HELP: &str = "\
Exit codes:
  CMD's own code   elector run: the command's exit code (128+N if killed by signal N)
  0                elector run: skipped, another node leads (run.skipped_exit_code)
  64               usage error (bad flags or arguments)
  69               backend or local agent unavailable
  70               internal error
  75               leadership lost while the command ran; the command was killed
  76               the backend answered something unexpected
  78               configuration error
  126 / 127        the command cannot be executed / was not found";

/// An error with the exit code it maps to.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The process exit code.
    pub(crate) code: u8,
    /// The error and its causes.
    pub(crate) error: anyhow::Error,
}

impl Failure {
    /// A configuration error (78).
    pub(crate) fn config(error: anyhow::Error) -> Self {
        Failure {
            code: CONFIG,
            error,
        }
    }

    /// An error with an explicit code.
    pub(crate) fn new(code: u8, error: anyhow::Error) -> Self {
        Failure { code, error }
    }
}

impl From<election_core::Error> for Failure {
    fn from(e: election_core::Error) -> Self {
        let code = match e.kind() {
            ErrorKind::Unavailable | ErrorKind::Closed => UNAVAILABLE,
            ErrorKind::Config => CONFIG,
            ErrorKind::Protocol => PROTOCOL,
            ErrorKind::Lost | ErrorKind::StaleEpoch => LOST,
            _ => SOFTWARE,
        };
        Failure {
            code,
            error: e.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        match error.downcast::<election_core::Error>() {
            Ok(e) => e.into(),
            Err(error) => Failure {
                code: SOFTWARE,
                error,
            },
        }
    }
}
