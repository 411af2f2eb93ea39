//! A small tmpfs of its own, for tests of what a full disk does. Mounting needs root
//! (`CAP_SYS_ADMIN`), which the project's CI has; elsewhere [`Tmpfs::mount`] fails with a
//! message that says so.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs, unmounted when dropped.
#[derive(Debug)]
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` bytes on a fresh temporary directory.
    pub fn mount(bytes: u64) -> io::Result<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("elector-tmpfs-")
            .tempdir()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes}"))
            .arg("tmpfs")
            .arg(dir.path())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "mounting a tmpfs for a full-disk test failed (it needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        Ok(Tmpfs { dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system to the last byte with one file, and returns its path
    /// (remove it to free the space).
    pub fn fill(&self) -> io::Result<PathBuf> {
        use std::io::Write as _;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path)?;
        let block = vec![0u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::StorageFull => break,
                Err(e) => return Err(e),
            }
        }
        // The last partial block too.
        while let Ok(1) = f.write(&[0u8]) {}
        Ok(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}
