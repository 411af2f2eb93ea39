//! The agent's Unix socket: the permission boundary for everything that changes
//! leadership. The kernel checks the socket's mode on every connect, so only the agent's
//! user, root and (with `agent.socket_group`) that group's members get in.

use std::io;
use std::os::unix::fs::{
    DirBuilderExt as _, FileTypeExt as _, MetadataExt as _, PermissionsExt as _,
};
use std::path::Path;

use nix::unistd::{Gid, Group, Uid};

/// The group `name`, for `agent.socket_group`.
pub(super) fn group(name: &str) -> Result<Gid, String> {
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(format!("no group named {name:?} on this host")),
        Err(e) => Err(format!("looking up group {name:?}: {e}")),
    }
}

/// Binds the socket at `path`, mode 0600 (0660 and owned by `group` if given). Creates
/// its directory, mode 0700 (0750), if missing; an existing directory must not be
/// writable by others, and must belong to this user or root. A socket file left by an
/// agent that is gone is replaced; one that still answers is refused.
pub(super) fn bind(path: &Path, group: Option<Gid>) -> io::Result<tokio::net::UnixListener> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    prepare_dir(dir, group)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another agent is serving this socket",
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // The socket is created with the process umask: make it private from its first
    // instant (the runtime is single-threaded, and nothing else creates files meanwhile).
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = tokio::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound?;
    if let Some(gid) = group {
        nix::unistd::chown(path, None, Some(gid)).map_err(io::Error::from)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    }
    Ok(listener)
}

fn prepare_dir(dir: &Path, group: Option<Gid>) -> io::Result<()> {
    let mode = if group.is_some() { 0o750 } else { 0o700 };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(dir)?;
            if let Some(gid) = group {
                nix::unistd::chown(dir, None, Some(gid)).map_err(io::Error::from)?;
            }
            // The umask may have taken bits away from `mode`; give exactly `mode`.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        }
        Err(e) => Err(e),
        Ok(meta) => {
            let me = Uid::effective().as_raw();
            if meta.uid() != me && meta.uid() != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "its directory {} belongs to uid {}, not to this user or root",
                        dir.display(),
                        meta.uid()
                    ),
                ));
            }
            if meta.mode() & 0o002 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "its directory {} is writable by everyone (mode {:o}); use a directory \
                         of its own, such as /run/elector",
                        dir.display(),
                        meta.mode() & 0o7777
                    ),
                ));
            }
            Ok(())
        }
    }
}

/// Removes the socket file when dropped: when the agent stops, or fails to start.
pub(super) struct Removed(pub(super) std::path::PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(socket = %self.0.display(), error = %e, "could not remove the agent's socket");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_and_its_directory_are_private_and_a_live_socket_is_not_taken_over() {
        let top = tempfile::tempdir().unwrap();
        let path = top.path().join("run/agent.sock");
        let listener = bind(&path, None).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let e = bind(&path, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        drop(listener);
        // The agent is gone, its socket file is not: the next agent replaces it.
        bind(&path, None).unwrap();
    }

    #[tokio::test]
    async fn a_directory_everyone_may_write_to_is_refused() {
        let top = tempfile::tempdir().unwrap();
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = bind(&top.path().join("agent.sock"), None).unwrap_err();
        assert!(e.to_string().contains("writable by everyone"), "{e}");
    }
}
