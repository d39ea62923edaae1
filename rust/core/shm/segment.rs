//! The shared-memory segment: a file mapped by the parent and by every worker process, read
//! and written only through atomic words.
//!
//! # Layout (version [`VERSION`]), in 8-byte words
//!
//! ```text
//! header       HEADER_WORDS       magic "MILEPOST", version, the sizes below, parent pid,
//!                                 node count (allocation counter)
//! metric names MAX_METRICS x 9    state (0 empty, 1 claimed, 2 ready), length, a 56-byte name
//! node table   MAX_NODES x 28     ready, parent, kind, total, open, last state, creator,
//!                                 name length, 16 name words, unit length, 3 unit words
//! slot states  MAX_SLOTS x 2      state (free, claiming, active, dead, exited), pid
//! slots        MAX_SLOTS x SLOT   one per worker process:
//!   header     32                 (2 unused), item seqlock, item length, 16 item words,
//!                                 done, failed, ring head, ring tail, ring dropped, beat
//!   counters   MAX_NODES x 43     per node: done, failed, skipped, retried, in flight,
//!                                 items timed, item seconds (f64), metric used/float masks,
//!                                 items done, items skipped (ended in an item context),
//!                                 32 metric sums (f64)
//!   ring       RING x 128         events: a header word (kind, node), length, 126 text words
//! ```
//! Each slot has one writer (its worker process; the GIL serializes that process's threads),
//! so counters are written with plain stores and read by the parent with relaxed loads. The
//! file is sparse: pages no worker touches take no memory.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapMut;

pub const MAGIC: u64 = u64::from_le_bytes(*b"MILEPOST");
pub const VERSION: u64 = 2;
pub const MAX_SLOTS: usize = 128;
pub const MAX_NODES: usize = 256;
pub const MAX_METRICS: usize = crate::core::metrics::MAX_METRICS;
pub const RING: usize = 256;

pub const HEADER_WORDS: usize = 16;
pub const METRIC_ENTRY: usize = 9;
/// Metric entry words: state, then the name (length word + 7 words).
pub const M_STATE: usize = 0;
pub const M_NAME: usize = 1;
pub const NODE_ENTRY: usize = 28;
pub const SLOT_HEADER: usize = 32;
pub const COUNTER_WORDS: usize = 11 + MAX_METRICS;
pub const RECORD_WORDS: usize = 128;
/// Words of a ring record's text: after its header word and the text's length word.
pub const RECORD_TEXT_WORDS: usize = RECORD_WORDS - 2;
/// Longest event text a worker can queue, in bytes (longer text is cut, and its JSON broken:
/// the worker's side clips what it sends to fit).
pub const RECORD_BYTES: usize = RECORD_TEXT_WORDS * 8;
pub const SLOT_WORDS: usize = SLOT_HEADER + MAX_NODES * COUNTER_WORDS + RING * RECORD_WORDS;

pub const METRICS_AT: usize = HEADER_WORDS;
pub const NODES_AT: usize = METRICS_AT + MAX_METRICS * METRIC_ENTRY;
/// Each slot's state and pid, kept with the header (reserved when the file is created): the
/// parent scans them often, and touching an unreserved page of a full tmpfs kills a process,
/// even to read it.
pub const SLOTDIR_AT: usize = NODES_AT + MAX_NODES * NODE_ENTRY;
pub const SLOTS_AT: usize = SLOTDIR_AT + MAX_SLOTS * 2;
pub const TOTAL_WORDS: usize = SLOTS_AT + MAX_SLOTS * SLOT_WORDS;

// Header words.
pub const H_MAGIC: usize = 0;
pub const H_VERSION: usize = 1;
pub const H_SLOTS: usize = 2;
pub const H_NODES: usize = 3;
pub const H_METRICS: usize = 4;
pub const H_RING: usize = 5;
pub const H_PARENT_PID: usize = 6;
pub const H_NODE_COUNT: usize = 7;
/// Set (1) when the run is cancelled: workers stop taking new items.
pub const H_CANCELLED: usize = 8;
/// The pid of the process registering a node (0: free), so that two workers asking for the
/// same step at once get one step.
pub const H_REGISTER_LOCK: usize = 9;
/// Set (1) when the run has ended: a worker's update after that is refused, as in the parent.
pub const H_ENDED: usize = 10;
/// Bits telling pools to stop (a Ctrl-C in the parent): pool `b` is bit `b % 64` of word
/// `H_POOL_STOP + b / 64`. A pool's workers stop handing out items when its bit is set, and the
/// run goes on.
pub const H_POOL_STOP: usize = 11;
pub const POOL_STOP_WORDS: usize = 4;
pub const MAX_POOLS: usize = POOL_STOP_WORDS * 64;

// Node entry words.
pub const N_READY: usize = 0;
pub const N_PARENT: usize = 1;
pub const N_KIND: usize = 2;
pub const N_TOTAL: usize = 3;
pub const N_OPEN: usize = 4;
pub const N_STATE: usize = 5;
pub const N_CREATOR: usize = 6;
pub const N_NAME: usize = 7;
pub const N_UNIT: usize = 24;

// Slot header words.
pub const S_ITEM: usize = 2;
pub const S_DONE: usize = 20;
pub const S_FAILED: usize = 21;
pub const S_HEAD: usize = 22;
pub const S_TAIL: usize = 23;
pub const S_DROPPED: usize = 24;
/// Bumped by every write of the worker: the parent's sign of life.
pub const S_BEAT: usize = 25;

// Per-node counter words within a slot.
pub const C_DONE: usize = 0;
pub const C_FAILED: usize = 1;
pub const C_SKIPPED: usize = 2;
pub const C_RETRIED: usize = 3;
pub const C_IN_FLIGHT: usize = 4;
pub const C_TIMED: usize = 5;
pub const C_SECONDS: usize = 6;
pub const C_USED: usize = 7;
pub const C_FLOATS: usize = 8;
/// Done and skipped in an item context, kept apart from `C_DONE` / `C_SKIPPED` (the reader
/// sums them), as the parent's node keeps them (see `Counts`).
pub const C_ITEM_DONE: usize = 9;
pub const C_ITEM_SKIPPED: usize = 10;
pub const C_METRICS: usize = 11;

/// Slot states.
pub const FREE: u64 = 0;
pub const ACTIVE: u64 = 1;
pub const DEAD: u64 = 2;
pub const EXITED: u64 = 3;
/// Taken by a worker that is still writing its pid: the parent ignores it until ACTIVE.
pub const CLAIMING: u64 = 4;
/// Being stopped by the parent (a second Ctrl-C): not a death, its items not failures.
pub const STOPPING: u64 = 5;

use crate::core::node::UNKNOWN_TOTAL;
/// No slot claimed by this process yet (after a fork the child starts here again).
pub const UNCLAIMED: usize = usize::MAX;

/// How many times this process has been the child of a fork (bumped, without a lock, by the
/// at-fork hook). A claimed slot remembers the generation it was claimed in, so a forked
/// child never writes into its parent's slot, and no lock is taken after a fork: a lock held
/// by another thread at the moment of the fork would stay locked in the child forever.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

pub fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// Called in a child process right after `fork`.
pub fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

fn pack(slot: usize, generation: u64) -> u64 {
    (generation << 32) | slot as u64
}

/// Why a segment could not be created or attached.
#[derive(Debug)]
pub enum SegmentError {
    Io(std::io::Error),
    NotASegment(PathBuf),
    Version { path: PathBuf, found: u64 },
}

impl std::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::NotASegment(p) => write!(f, "{} is not a milepost segment", p.display()),
            Self::Version { path, found } => write!(
                f,
                "{} has layout version {found}; this milepost reads version {VERSION} (mixed milepost versions in one job?)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SegmentError {}

impl From<std::io::Error> for SegmentError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// A mapped segment. The creating process (not a child that inherited it) removes the file
/// when dropped.
#[derive(Debug)]
pub struct Segment {
    map: MmapMut,
    /// The mapping's first word (taken from it writable) and its length in words, read once:
    /// `word` is on every count's path, about twenty times an item of a pool's worker, where
    /// asking the mapping for its slice each time took about 40 instructions an item
    /// (callgrind). The mapping never moves while `map` lives.
    words: *const AtomicU64,
    len: usize,
    file: File,
    path: PathBuf,
    /// The process that created the file, if it was this one's ancestor-or-self.
    owner_pid: Option<u32>,
    /// The slot this process writes to and the fork generation it was claimed in.
    pub(crate) my_slot: AtomicU64,
    /// Metric names this process already found in the table, with their index (see
    /// `metric_index`). Only ever `try_lock`ed: a child forked while another thread of its
    /// parent held it finds it locked for good, and looks names up in the table instead.
    pub(crate) metric_cache: parking_lot::Mutex<Vec<(String, usize)>>,
}

// SAFETY: the mapping is only ever accessed through `AtomicU64` words (see `word`), which are
// safe to share between threads and, being lock-free, between processes; `words` points into
// the mapping `map` owns, which stays where it is (a shared mapping, never remapped) until the
// segment is dropped, whichever thread holds it.
unsafe impl Send for Segment {}
unsafe impl Sync for Segment {}

impl Segment {
    /// Creates the segment file at `path` (which must not exist) and maps it.
    pub fn create(path: &Path, parent_pid: u32) -> Result<Self, SegmentError> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        file.set_len((TOTAL_WORDS * 8) as u64)?;
        // The header and tables are reserved now, each slot when a worker claims it: writing
        // to a page of a sparse file on a full filesystem would kill the process (SIGBUS).
        if let Err(e) = reserve(&file, 0, SLOTS_AT * 8) {
            let _ = std::fs::remove_file(path);
            return Err(e.into());
        }
        let seg = Self::map(file, path, Some(std::process::id()))?;
        for (i, v) in [
            (H_VERSION, VERSION),
            (H_SLOTS, MAX_SLOTS as u64),
            (H_NODES, MAX_NODES as u64),
            (H_METRICS, MAX_METRICS as u64),
            (H_RING, RING as u64),
            (H_PARENT_PID, u64::from(parent_pid)),
        ] {
            seg.word(i).store(v, Ordering::Relaxed);
        }
        for n in 0..MAX_NODES {
            seg.word(NODES_AT + n * NODE_ENTRY + N_TOTAL).store(UNKNOWN_TOTAL, Ordering::Relaxed);
        }
        // Written last, with release ordering: a reader that sees the magic sees the rest.
        seg.word(H_MAGIC).store(MAGIC, Ordering::Release);
        Ok(seg)
    }

    /// Maps an existing segment created by a parent process.
    pub fn attach(path: &Path) -> Result<Self, SegmentError> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        if file.metadata()?.len() < (HEADER_WORDS * 8) as u64 {
            return Err(SegmentError::NotASegment(path.to_owned()));
        }
        let seg = Self::map(file, path, None)?;
        if seg.word(H_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(SegmentError::NotASegment(path.to_owned()));
        }
        let found = seg.word(H_VERSION).load(Ordering::Relaxed);
        if found != VERSION || seg.map.len() < TOTAL_WORDS * 8 {
            return Err(SegmentError::Version { path: path.to_owned(), found });
        }
        Ok(seg)
    }

    fn map(file: File, path: &Path, owner_pid: Option<u32>) -> Result<Self, SegmentError> {
        // SAFETY: the file is ours (created above, or named by our parent process) and is
        // only accessed through atomic words, so concurrent writers cannot cause undefined
        // behaviour; its size is checked before any word beyond the header is read.
        let mut map = unsafe { MmapMut::map_mut(&file)? };
        #[allow(clippy::cast_ptr_alignment)] // the mapping is page-aligned (see `word`)
        let words = map.as_mut_ptr().cast::<AtomicU64>().cast_const();
        Ok(Self {
            words,
            len: map.len() / 8,
            map,
            file,
            path: path.to_owned(),
            owner_pid,
            my_slot: AtomicU64::new(pack(UNCLAIMED, 0)),
            metric_cache: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// Reserves the disk space of a slot before it is written.
    pub(crate) fn reserve_slot(&self, slot: usize) -> std::io::Result<()> {
        reserve(&self.file, Self::slot_base(slot) * 8, SLOT_WORDS * 8)
    }

    /// This process's slot, if it claimed one since its last fork.
    #[inline]
    pub(crate) fn claimed(&self) -> Option<usize> {
        let v = self.my_slot.load(Ordering::Relaxed);
        let slot = (v & 0xffff_ffff) as usize;
        (v >> 32 == fork_generation() && slot != (UNCLAIMED & 0xffff_ffff)).then_some(slot)
    }

    pub(crate) fn set_claimed(&self, slot: Option<usize>) {
        let s = slot.unwrap_or(UNCLAIMED & 0xffff_ffff);
        self.my_slot.store(pack(s, fork_generation()), Ordering::Relaxed);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `index`-th 8-byte word of the segment.
    #[inline]
    pub fn word(&self, index: usize) -> &AtomicU64 {
        assert!(index < self.len, "word {index} is outside the segment");
        // SAFETY: the index is in bounds (checked above); the mapping is page-aligned, so
        // every word is 8-byte aligned; `AtomicU64` has the layout of `u64`, and the memory
        // lives as long as `self.map`, which outlives the returned reference.
        unsafe { &*self.words.add(index) }
    }

    pub fn slot_base(slot: usize) -> usize {
        SLOTS_AT + slot * SLOT_WORDS
    }

    /// The slot's state word (in the reserved directory, not in the slot itself).
    pub fn state_word(&self, slot: usize) -> &AtomicU64 {
        self.word(SLOTDIR_AT + slot * 2)
    }

    pub fn pid_word(&self, slot: usize) -> &AtomicU64 {
        self.word(SLOTDIR_AT + slot * 2 + 1)
    }

    pub fn counter(slot: usize, node: usize, field: usize) -> usize {
        Self::slot_base(slot) + SLOT_HEADER + node * COUNTER_WORDS + field
    }

    pub fn node_entry(node: usize, field: usize) -> usize {
        NODES_AT + node * NODE_ENTRY + field
    }

    /// Writes `text` (clipped to `words` x 8 bytes at a character boundary) as a length word
    /// followed by its bytes packed into words. Only the words the text fills are written:
    /// `read_text` reads no further than the length (a pool's worker writes its current item's
    /// name twice an item, and an empty one at its end).
    pub fn write_text(&self, at: usize, words: usize, text: &str) {
        let bytes = clip_bytes(text, words).as_bytes();
        for (w, piece) in bytes.chunks(8).enumerate() {
            let mut chunk = [0u8; 8];
            chunk[..piece.len()].copy_from_slice(piece);
            self.word(at + 1 + w).store(u64::from_le_bytes(chunk), Ordering::Relaxed);
        }
        self.word(at).store(bytes.len() as u64, Ordering::Release);
    }

    /// Reads text written by `write_text` (invalid UTF-8 is replaced).
    pub fn read_text(&self, at: usize, words: usize) -> String {
        let len = (self.word(at).load(Ordering::Acquire) as usize).min(words * 8);
        let mut bytes = Vec::with_capacity(len);
        for w in 0..len.div_ceil(8) {
            bytes.extend_from_slice(&self.word(at + 1 + w).load(Ordering::Relaxed).to_le_bytes());
        }
        bytes.truncate(len);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Removes the file (the mapping stays valid until dropped).
    pub fn unlink(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // A forked child that exits must not remove the file its parent still uses.
        if self.owner_pid == Some(std::process::id()) {
            self.unlink();
        }
    }
}

/// Allocates `len` bytes of `file` from `offset` (ENOSPC becomes an error here, not a crash
/// on first write).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[allow(clippy::cast_possible_wrap)]
fn reserve(file: &File, offset: usize, len: usize) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: the descriptor is open for as long as `file` lives; the call only reserves space.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), offset as libc::off_t, len as libc::off_t) };
    match rc {
        // Done, or a filesystem without fallocate: nothing to reserve with, carry on.
        0 | libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        e => Err(std::io::Error::from_raw_os_error(e)),
    }
}

/// Allocates `len` bytes of `file` from `offset` where there is no `posix_fallocate` (macOS,
/// Windows): writing the zeros is what reserves them, and a full disk says so here.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn reserve(file: &File, offset: usize, len: usize) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let zeros = vec![0u8; 1 << 16];
    let mut file = file;
    file.seek(SeekFrom::Start(offset as u64))?;
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len());
        file.write_all(&zeros[..n])?;
        left -= n;
    }
    file.flush()
}

/// The longest prefix of `text` that `write_text` keeps in `words` words.
pub fn clip_bytes(text: &str, words: usize) -> &str {
    let mut end = text.len().min(words * 8);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Whether process `pid` is running (not gone, not a zombie waiting to be reaped).
#[cfg(unix)]
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid_t) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: `kill` with signal 0 sends nothing; it only checks that the process exists.
    let exists =
        unsafe { libc::kill(pid_t, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    // A zombie still "exists" until its parent reaps it; /proc says it is dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// Whether process `pid` is running: it can be opened and has no exit code yet.
#[cfg(windows)]
pub fn process_alive(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, STILL_ACTIVE};
    use windows_sys::Win32::System::Threading::{GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};
    // SAFETY: a handle opened for querying only, closed before returning; the exit code is
    // written into a local.
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            return false;
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(handle, &raw mut code) != 0;
        CloseHandle(handle);
        ok && code == STILL_ACTIVE as u32
    }
}

/// Removes segment files in `dir` left by parents that no longer run (a parent killed with
/// SIGKILL cannot clean up after itself). Returns how many were removed.
pub fn remove_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("milepost-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !process_alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}
