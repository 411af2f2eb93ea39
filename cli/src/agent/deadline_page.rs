//! The deadline page of a hold (decision 126): one word of memory the agent shares with
//! its local caller, holding the hold's current deadline as nanoseconds on the boot clock.
//!
//! The agent stores each new deadline of its leadership there while the caller shows it
//! is alive (a `renew` within the caller timeout), after moving the deadline it keeps for
//! the caller. The caller maps the page read-only before it forks the guard (which
//! inherits the mapping), and both read it only when their own deadline has come: a later
//! value means "go on", so an idle hold costs nobody a wake-up per extension. Any value
//! stored is a deadline the agent's leadership guarantees, and every reader treats the
//! first one it finds passed as the end (the caller's keeper latches it, the guard stops
//! taking deadlines), so a store that lands late cannot revive anything.
//!
//! The page is a file of one memory page in a directory next to the agent's socket
//! (`SOCKET.holds/`, mode 0700, or 0750 for `agent.socket_group`), written in full before
//! it is mapped: on a full tmpfs the write fails and the hold goes on without a page
//! (the caller then renews at a third of the lease, as before), and a store can never
//! fault. The agent never truncates a page; it removes the file when the hold ends (the
//! mappings stay valid) and empties the directory when it starts.

use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, Ordering};

use election_core::DeadlineSource;
use nix::unistd::Gid;
use tokio::time::Instant;

/// The size of a page file: one memory page on every Linux platform we build for.
const PAGE_LEN: usize = 4096;

/// The directory of the deadline pages of the agent serving `socket`.
pub(crate) fn dir_for(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".holds");
    PathBuf::from(name)
}

/// A shared mapping of one page file.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
}

// SAFETY: the mapping is only ever accessed through an `AtomicI64` at its start.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(file: &File, writable: bool) -> io::Result<Mapping> {
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping of a file at least PAGE_LEN long (checked by the
        // callers), released in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE_LEN,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(ptr.cast())
            .map(|ptr| Mapping { ptr })
            .ok_or_else(|| io::Error::other("mmap returned a null pointer"))
    }

    fn word(&self) -> &AtomicI64 {
        // SAFETY: the mapping is page-aligned and PAGE_LEN long, so its first 8 bytes are
        // an aligned i64 that lives as long as `self`; every access is atomic.
        unsafe { &*self.ptr.as_ptr().cast::<AtomicI64>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; no reference outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), PAGE_LEN);
        }
    }
}

/// Empties (or creates) the page directory at `dir`, mode 0700 (0750 and owned by
/// `group`): pages of a previous agent's holds are of no use to anyone now.
pub(crate) fn prepare_dir(dir: &Path, group: Option<Gid>) -> io::Result<()> {
    let mode = if group.is_some() { 0o750 } else { 0o700 };
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(dir)?,
        Err(e) => return Err(e),
    }
    if let Some(gid) = group {
        nix::unistd::chown(dir, None, Some(gid)).map_err(io::Error::from)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

/// The agent's side of a hold's page: stores deadlines, removes the file when dropped.
#[derive(Debug)]
pub(crate) struct PageWriter {
    path: PathBuf,
    map: Mapping,
}

impl PageWriter {
    /// Creates the page of hold `id` in `dir` (mode 0600, or 0640 and owned by `group`),
    /// holding `deadline`.
    pub(crate) fn create(
        dir: &Path,
        id: &str,
        group: Option<Gid>,
        deadline: Instant,
    ) -> io::Result<PageWriter> {
        let path = dir.join(id);
        let mode = if group.is_some() { 0o640 } else { 0o600 };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)?;
        let written = (|| {
            let mut page = [0u8; PAGE_LEN];
            page[..8].copy_from_slice(&crate::clock::to_boot_ns(deadline).to_le_bytes());
            // Every byte written now: no store into the mapping can need a block later.
            file.write_all(&page)?;
            if let Some(gid) = group {
                nix::unistd::fchown(&file, None, Some(gid)).map_err(io::Error::from)?;
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            Mapping::new(&file, true)
        })();
        match written {
            Ok(map) => Ok(PageWriter { path, map }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Where the caller finds it.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `deadline`: readers that find their own deadline passed go on until then.
    pub(crate) fn store(&self, deadline: Instant) {
        self.map
            .word()
            .store(crate::clock::to_boot_ns(deadline), Ordering::Release);
    }
}

impl Drop for PageWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The caller's side: the deadline the agent last stored, as a [`DeadlineSource`] for the
/// caller's keeper and, through [`DeadlineSource::shared_boot_ns`], for the guard.
#[derive(Debug)]
pub(crate) struct PageReader {
    map: Mapping,
}

impl PageReader {
    /// Maps the page at `path` read-only: a regular file of one page, as the agent
    /// creates them.
    pub(crate) fn open(path: &Path) -> io::Result<PageReader> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() || meta.size() < PAGE_LEN as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a deadline page", path.display()),
            ));
        }
        Ok(PageReader {
            map: Mapping::new(&file, false)?,
        })
    }
}

impl DeadlineSource for PageReader {
    fn deadline(&self) -> Option<Instant> {
        let ns = self.map.word().load(Ordering::Acquire);
        Some(crate::clock::from_boot_ns(ns))
    }

    fn shared_boot_ns(&self) -> Option<&AtomicI64> {
        Some(self.map.word())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_caller_reads_what_the_agent_stores_and_keeps_its_mapping_after_removal() {
        let dir = tempfile::tempdir().unwrap();
        let pages = dir_for(&dir.path().join("agent.sock"));
        prepare_dir(&pages, None).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&pages), 0o700);
        let now = Instant::now();
        let writer = PageWriter::create(&pages, "h1", None, now).unwrap();
        assert_eq!(mode(writer.path()), 0o600);
        let reader = PageReader::open(writer.path()).unwrap();
        let near = |a: Instant, b: Instant| {
            let d = if a > b { a - b } else { b - a };
            d < Duration::from_millis(5)
        };
        assert!(near(reader.deadline().unwrap(), now));
        let later = now + Duration::from_secs(5);
        writer.store(later);
        assert!(near(reader.deadline().unwrap(), later));
        let word = reader.shared_boot_ns().unwrap().load(Ordering::Acquire);
        assert_eq!(word, writer.map.word().load(Ordering::Acquire));
        // The hold ended: the file is gone, the caller's mapping still reads.
        let path = writer.path().to_owned();
        drop(writer);
        assert!(!path.exists());
        assert!(near(reader.deadline().unwrap(), later));
    }

    #[test]
    fn a_new_agent_empties_the_directory_and_a_non_page_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pages = dir.path().join("p");
        prepare_dir(&pages, None).unwrap();
        std::fs::write(pages.join("stale"), [0u8; PAGE_LEN]).unwrap();
        std::fs::write(pages.join("short"), [0u8; 8]).unwrap();
        let e = PageReader::open(&pages.join("short")).unwrap_err();
        assert!(e.to_string().contains("not a deadline page"), "{e}");
        prepare_dir(&pages, None).unwrap();
        assert_eq!(std::fs::read_dir(&pages).unwrap().count(), 0);
    }
}
