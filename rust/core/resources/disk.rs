//! Free space of the filesystems a run writes to, and the warning once one runs low.

use std::path::PathBuf;

use super::snapshot::DiskSpace;

/// The directories a run writes to and whether each has been warned about.
#[derive(Debug)]
pub struct DiskWatch {
    dirs: Vec<(PathBuf, bool)>,
    warn_below: f64,
}

impl DiskWatch {
    /// Watches `dirs` (repeats dropped), warning when the free share falls below `warn_below`.
    pub fn new(dirs: &[PathBuf], warn_below: f64) -> Self {
        let mut unique: Vec<(PathBuf, bool)> = Vec::new();
        for d in dirs {
            if !unique.iter().any(|(u, _)| u == d) {
                unique.push((d.clone(), false));
            }
        }
        Self { dirs: unique, warn_below }
    }

    /// The free space of each directory's filesystem now; `warn` gets a message the first time
    /// one is below the threshold (once a run: a filesystem that hovers around it says so once).
    pub fn sample(&mut self, mut warn: impl FnMut(String)) -> Vec<DiskSpace> {
        let warn_below = self.warn_below;
        self.dirs
            .iter_mut()
            .map(|(dir, warned)| {
                let space = free_space(dir);
                let fraction = space.and_then(|(free, total)| (total > 0).then(|| free as f64 / total as f64));
                let low = fraction.is_some_and(|f| f < warn_below);
                if low && !*warned {
                    *warned = true;
                    let (free, _) = space.unwrap_or_default();
                    warn(format!(
                        "low disk space: {:.1}% free ({} MB) on the filesystem of {}, where the run writes \
                         (warned below {:.1}%)",
                        fraction.unwrap_or(0.0) * 100.0,
                        free / 1_000_000,
                        dir.display(),
                        warn_below * 100.0
                    ));
                }
                DiskSpace {
                    path: dir.to_string_lossy().into_owned(),
                    free_bytes: space.map(|s| s.0),
                    total_bytes: space.map(|s| s.1),
                    free_fraction: fraction,
                    low,
                }
            })
            .collect()
    }
}

/// `(free, total)` bytes of the filesystem holding `dir`, free meaning what an unprivileged
/// user may still write; None when it cannot be read (the directory is gone, or its
/// filesystem was unmounted).
#[cfg(unix)]
#[allow(unsafe_code)]
#[allow(clippy::useless_conversion)] // the fields are u64 here, but u32 on 32-bit targets
fn free_space(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `st` points to
    // writable memory of the structure's size, which statvfs fills when it returns 0.
    let st = unsafe {
        if libc::statvfs(path.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    let block = u64::from(st.f_frsize);
    Some((u64::from(st.f_bavail).saturating_mul(block), u64::from(st.f_blocks).saturating_mul(block)))
}

#[cfg(not(unix))]
fn free_space(_dir: &std::path::Path) -> Option<(u64, u64)> {
    None
}
