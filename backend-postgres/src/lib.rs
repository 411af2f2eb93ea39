//! Leader election on PostgreSQL (docs to follow).

mod backend;
mod config;
mod conn;
mod elector;
mod fence;
mod holder;
mod lease;
mod observe;
mod sql;

pub use backend::PostgresBackend;
pub use config::PostgresConfig;
pub use fence::PostgresFence;
/// The client library, re-exported so that fenced writes use the same version.
pub use tokio_postgres;
