//! The SQLite backend's `ChangeFeed`: a 32-byte file beside the database (`<db>-changes`), one
//! 8-byte generation per kind of cached row. Publishing writes a fresh random value into the
//! kind's slot; reading is one `pread` from the page cache, about a microsecond, cheap enough
//! for every cached read.
//!
//! Why a file and not `PRAGMA data_version`: that pragma changes on every commit of any other
//! connection, including this process's own group-commit writer, so under load it would flush
//! the caches on nearly every request; and asking it costs a round trip to a connection thread.
//! Every process that writes through Keyway's store (the server, the CLI, a second server)
//! publishes here; a change made with another tool (the sqlite3 shell) is seen when the entry
//! expires (a minute at most).

use crate::store::cache::{ChangeFeed, Generations, KINDS, Kind};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

const LEN: u64 = (KINDS * 8) as u64;

#[derive(Debug)]
pub struct FileFeed {
    file: Option<File>,
}

impl FileFeed {
    /// Opens (creating) the feed beside `db`. Without it (a read-only directory) the caches
    /// trust nothing: every read goes to the database.
    pub fn open(db: &Path) -> Self {
        let mut name = db.as_os_str().to_owned();
        name.push("-changes");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&name)
            .and_then(|f| {
                if f.metadata()?.len() < LEN {
                    f.set_len(LEN)?;
                }
                Ok(f)
            });
        match file {
            Ok(f) => Self { file: Some(f) },
            Err(e) => {
                tracing::warn!(error = %e, path = %Path::new(&name).display(),
                    "cannot open the change feed; caching is off");
                Self { file: None }
            }
        }
    }
}

impl ChangeFeed for FileFeed {
    fn current(&self) -> Option<Generations> {
        let mut buf = [0u8; LEN as usize];
        self.file.as_ref()?.read_exact_at(&mut buf, 0).ok()?;
        let mut g = [0u64; KINDS];
        for (slot, bytes) in g.iter_mut().zip(buf.chunks_exact(8)) {
            *slot = u64::from_le_bytes(bytes.try_into().ok()?);
        }
        Some(g)
    }

    fn publish(&self, kind: Kind) {
        let Some(file) = &self.file else { return };
        // Random, not incremented: two processes publishing at once need no lock, and any
        // value other than the one a reader saw tells it to drop its entries.
        let value = crate::crypto::random_bytes(8)
            .ok()
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .unwrap_or_else(|| (std::process::id() as u64).to_le_bytes());
        if let Err(e) = file.write_all_at(&value, kind as u64 * 8) {
            tracing::error!(error = %e, "cannot publish a change; other processes may serve stale rows");
        }
    }
}
