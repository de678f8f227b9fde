//! Fetching finished videos from the file host. A video is streamed to a hidden `.part` file
//! beside its final name, its length checked and hash computed on the way, then renamed: a final
//! name only ever holds a whole file. The API key is never sent here (this client has none).

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::api::error_chain;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The URL is no longer valid (presigned URLs expire after 10 minutes): poll for a new one.
    #[error("the download URL was refused (HTTP {0}); it has probably expired")]
    Expired(u16),
    #[error("download failed: {0}")]
    Transient(String),
    /// Larger than `--max-download-size`: refused before or while writing, never kept.
    #[error("the file host offered {offered}, more than the limit of {limit} bytes (--max-download-size)")]
    TooLarge { offered: String, limit: u64 },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: u64,
    pub sha256: String,
}

pub struct Downloader {
    http: reqwest::Client,
    /// The most bytes one video may weigh: a file host that sends without end must not fill the disk.
    max_bytes: u64,
    pace: Pace,
}

/// The least a file host must send: a video trickled a byte at a time would hold a download slot
/// for days. Real videos come at megabytes a second; the floor is far below any working host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// No byte for this long: the download has failed.
    pub read_idle: Duration,
    /// Fewer than `min_bytes` in any `window`: the download has failed (and is tried again later,
    /// from a fresh URL).
    pub window: Duration,
    pub min_bytes: u64,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            read_idle: Duration::from_secs(30),
            window: Duration::from_secs(30),
            min_bytes: 64 << 10,
        }
    }
}

/// Real videos weigh tens of MB; this leaves room for long 1080p ones.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// The suffix of an unfinished download; anything carrying it is garbage from a dead run.
pub const PART_SUFFIX: &str = ".part";

impl Downloader {
    pub fn new(max_bytes: u64) -> Result<Downloader, String> {
        Downloader::with_pace(max_bytes, Pace::default())
    }

    /// [`Downloader::new`] with another floor on the file host's pace (tests give short ones).
    pub fn with_pace(max_bytes: u64, pace: Pace) -> Result<Downloader, String> {
        let http = crate::api::http_client()
            .read_timeout(pace.read_idle)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Downloader { http, max_bytes, pace })
    }

    /// Downloads `url` to `dest`. `expected_size` is what the service said the file weighs. The
    /// file is synced; its name is durable once the caller syncs the folder ([`sync_folder`]).
    pub async fn fetch(&self, url: &str, dest: &Path, expected_size: Option<u64>) -> Result<Downloaded, DownloadError> {
        let part = part_path(dest);
        let result = self.stream_to(url, &part, dest, expected_size).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&part).await;
        }
        result
    }

    /// Streams the body into `part` and, once it is whole, makes it `dest`. The file work runs
    /// on the blocking pool a batch at a time (a megabyte, or the whole of a small video in one
    /// go: created, written, hashed, synced and renamed in one hop), while the next batch
    /// arrives from the network.
    async fn stream_to(
        &self,
        url: &str,
        part: &Path,
        dest: &Path,
        expected_size: Option<u64>,
    ) -> Result<Downloaded, DownloadError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| DownloadError::Transient(error_chain(&e)))?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            401 | 403 | 404 | 410 => return Err(DownloadError::Expired(status)),
            _ => return Err(DownloadError::Transient(format!("HTTP {status}"))),
        }
        let announced = response.content_length();
        if let Some(n) = announced.filter(|&n| n > self.max_bytes) {
            return Err(DownloadError::TooLarge {
                offered: format!("{n} bytes (Content-Length)"),
                limit: self.max_bytes,
            });
        }
        let mut sink = Some(Sink::new(part));
        let mut writing: Option<tokio::task::JoinHandle<Result<Sink, DownloadError>>> = None;
        let mut batch = Vec::new();
        let mut batched = 0usize;
        let mut bytes = 0u64;
        let mut stream = response.bytes_stream();
        let (mut window_start, mut window_bytes) = (tokio::time::Instant::now(), 0u64);
        while let Some(chunk) = stream.next().await {
            if let Ok(c) = &chunk {
                window_bytes += c.len() as u64;
            }
            let slow = window_start.elapsed() >= self.pace.window;
            let failed = match &chunk {
                Err(e) => Some(DownloadError::Transient(format!(
                    "cut off after {bytes} bytes: {}",
                    error_chain(e)
                ))),
                Ok(_) if slow && window_bytes < self.pace.min_bytes => Some(DownloadError::Transient(format!(
                    "the file host sent {window_bytes} bytes in {} s, too slow to be working",
                    self.pace.window.as_secs_f64()
                ))),
                Ok(c) if bytes + c.len() as u64 > self.max_bytes => Some(DownloadError::TooLarge {
                    offered: format!("more than {} bytes", self.max_bytes),
                    limit: self.max_bytes,
                }),
                Ok(_) => None,
            };
            if let Some(e) = failed {
                // The batch being written finishes first: the caller then removes a `.part`
                // that is really there (not one created just after).
                if let Some(w) = writing.take() {
                    let _ = w.await;
                }
                return Err(e);
            }
            if slow {
                (window_start, window_bytes) = (tokio::time::Instant::now(), 0);
            }
            let chunk = chunk.expect("an error returned above");
            bytes += chunk.len() as u64;
            batched += chunk.len();
            batch.push(chunk);
            if batched >= BATCH {
                // One batch on disk at a time, the next one filling meanwhile.
                if let Some(w) = writing.take() {
                    sink = Some(joined(w.await)?);
                }
                let mut s = sink.take().expect("the sink is back once its batch is written");
                let full = std::mem::take(&mut batch);
                batched = 0;
                writing = Some(tokio::task::spawn_blocking(move || s.write(&full).map(|()| s)));
            }
        }
        if let Some(w) = writing.take() {
            sink = Some(joined(w.await)?);
        }
        let mut sink = sink.expect("the sink is back once its batch is written");
        for (what, expected) in [
            ("Content-Length", announced),
            ("the announced file_size", expected_size),
        ] {
            if let Some(expected) = expected
                && expected != bytes
            {
                return Err(DownloadError::Transient(format!(
                    "got {bytes} bytes, {what} said {expected}"
                )));
            }
        }
        if bytes == 0 {
            return Err(DownloadError::Transient("the file host sent an empty file".into()));
        }
        let dest = dest.to_path_buf();
        joined(
            tokio::task::spawn_blocking(move || {
                sink.write(&batch)?;
                sink.finish(&dest, bytes)
            })
            .await,
        )
    }
}

/// How much of a video is written to disk at once.
const BATCH: usize = 1 << 20;

/// The result of a blocking file task (a task that panicked is a bug, reported as a write error).
fn joined<T>(r: Result<Result<T, DownloadError>, tokio::task::JoinError>) -> Result<T, DownloadError> {
    r.unwrap_or_else(|e| {
        Err(DownloadError::Write {
            path: PathBuf::new(),
            source: std::io::Error::other(format!("the file task failed: {e}")),
        })
    })
}

/// A `.part` file being written, with the hash of what went into it. Used on the blocking pool.
struct Sink {
    part: PathBuf,
    file: Option<std::fs::File>,
    hasher: Sha256,
}

impl Sink {
    fn new(part: &Path) -> Sink {
        Sink {
            part: part.to_path_buf(),
            file: None,
            hasher: Sha256::new(),
        }
    }

    fn failed(&self) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
        |source| DownloadError::Write {
            path: self.part.clone(),
            source,
        }
    }

    /// Appends `chunks`, creating the file (and its folder) with the first.
    fn write<B: AsRef<[u8]>>(&mut self, chunks: &[B]) -> Result<(), DownloadError> {
        use std::io::Write as _;
        if self.file.is_none() {
            let _turn = naming_turn();
            // The folder is made only when missing: thousands of videos share a few folders.
            let file = match std::fs::File::create(&self.part) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let dir = self.part.parent().unwrap_or(Path::new("."));
                    std::fs::create_dir_all(dir).map_err(|source| DownloadError::Write {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                    std::fs::File::create(&self.part)
                }
                created => created,
            };
            self.file = Some(file.map_err(self.failed())?);
        }
        let file = self.file.as_mut().expect("created above");
        for chunk in chunks {
            let chunk = chunk.as_ref();
            self.hasher.update(chunk);
            // A full disk shows here: std's writes are not deferred.
            file.write_all(chunk).map_err(|source| DownloadError::Write {
                path: self.part.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Syncs the file and renames it to `dest`. The rename is durable once the folder is synced,
    /// which the caller does for many videos at once ([`sync_folder`]) before it records them
    /// saved. What counts is what the disk holds, not what the network sent: a write error that
    /// slipped through would show as a short file.
    fn finish(self, dest: &Path, bytes: u64) -> Result<Downloaded, DownloadError> {
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DownloadError::Write { path, source }
        };
        let file = self.file.as_ref().expect("a file is created with the first bytes");
        file.sync_all().map_err(self.failed())?;
        {
            let _turn = naming_turn();
            std::fs::rename(&self.part, dest).map_err(write_err(dest))?;
        }
        // The open file is the renamed one: no path lookup needed.
        let on_disk = file.metadata().map_err(write_err(dest))?.len();
        if on_disk != bytes {
            let _ = std::fs::remove_file(dest);
            return Err(DownloadError::Write {
                path: dest.to_path_buf(),
                source: std::io::Error::other(format!("{on_disk} bytes on disk after writing {bytes}")),
            });
        }
        Ok(Downloaded {
            bytes,
            sha256: format!("{:x}", self.hasher.finalize()),
        })
    }
}

/// A turn at naming a file in the output folders (creating one, renaming one), taken by one
/// download at a time. The file system takes the folder's lock for each anyway; threads that met
/// there spun on it in the kernel (at 10,000 videos into one folder, a tenth of the run's CPU),
/// where waiting here sleeps.
fn naming_turn() -> std::sync::MutexGuard<'static, ()> {
    static NAMING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    NAMING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes the renames into `dir` durable: one sync for every video saved there since the last.
/// (A sync per video was two syscalls and a disk flush each, with 10,000 videos a minute.)
pub fn sync_folder(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir) {
        Ok(folder) => folder.sync_all(),
        // Where a folder cannot be opened (Windows), renames need no sync of it.
        Err(_) => Ok(()),
    }
}

/// Bytes this user may still write on the file system holding `path` (`None` where that cannot
/// be told: another platform, a path that does not exist).
#[cfg(unix)]
pub fn free_space(path: &Path) -> Option<u64> {
    let fs = rustix::fs::statvfs(path).ok()?;
    Some(fs.f_bavail.saturating_mul(fs.f_frsize))
}

#[cfg(not(unix))]
pub fn free_space(_: &Path) -> Option<u64> {
    None
}

/// `videos/a/shoe.mp4` → `videos/a/.shoe.mp4.<random>.part`: hidden, unique, same folder (so the
/// rename is atomic).
fn part_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{:08x}{PART_SUFFIX}", fastrand::u32(..)))
}

/// Removes `.part` files a killed run left behind under `dir`.
pub fn remove_stale_parts(dir: &Path) -> usize {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => removed += remove_stale_parts(&path),
            Ok(_) if path.to_string_lossy().ends_with(PART_SUFFIX) && std::fs::remove_file(&path).is_ok() => {
                removed += 1;
            }
            _ => {}
        }
    }
    removed
}

/// SHA-256 and size of a file on disk, to check a completed job's video on resume.
pub fn hash_file(path: &Path) -> std::io::Result<Downloaded> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher)?;
    Ok(Downloaded {
        bytes,
        sha256: format!("{:x}", hasher.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A file host on 127.0.0.1 that answers every request with `head` and then zeros, forever.
    async fn endless_host(head: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let _ = socket.read(&mut request).await;
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let zeros = vec![0u8; 64 * 1024];
                    while socket.write_all(&zeros).await.is_ok() {}
                });
            }
        });
        format!("http://{addr}/v.mp4")
    }

    #[tokio::test]
    async fn an_endless_body_stops_at_the_limit_and_leaves_nothing() {
        let url = endless_host("HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nConnection: close\r\n\r\n").await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("videos/v.mp4");
        let err = Downloader::new(1 << 20)
            .unwrap()
            .fetch(&url, &dest, None)
            .await
            .unwrap_err();
        assert!(matches!(err, DownloadError::TooLarge { limit: 1048576, .. }), "{err}");
        assert!(!dest.exists());
        // Nothing left: no part file (the folder is made with the first batch written, if any).
        let left = std::fs::read_dir(dir.path().join("videos")).map_or(0, |d| d.count());
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn an_announced_size_over_the_limit_is_refused_before_writing() {
        let url = endless_host("HTTP/1.1 200 OK\r\nContent-Length: 50000000000\r\n\r\n").await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("v.mp4");
        let err = Downloader::new(DEFAULT_MAX_BYTES)
            .unwrap()
            .fetch(&url, &dest, None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("50000000000 bytes (Content-Length)"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
