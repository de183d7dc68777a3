//! `multipart/form-data` bodies whose part headers are bounded: multer reads a part's headers
//! whole, and in time that grows faster than their size, so a client could send one header
//! of hundreds of megabytes. Here the bytes read while looking for the next part (its boundary
//! and headers) are counted, and past [`MAX_PART_HEADERS`] the body fails.
//!
//! A body is read to its end before or while it is answered ([`Multipart::finish`],
//! [`Multipart::linger`]): a server that closes a connection with part of a request unread
//! resets it, and a client still writing then loses the answer (a refusal becomes a broken
//! pipe).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::Mutex;

/// The most bytes read while looking for the next part: its boundary and headers (and what
/// is left of a part the caller skipped).
pub const MAX_PART_HEADERS: usize = 1 << 20;

/// The most of a refused body read and thrown away after answering ([`Multipart::linger`]).
pub const LINGER_BYTES: usize = 16 << 20;

/// The longest a refused body is read after answering ([`Multipart::linger`]).
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// A multipart body read part by part, with bounded part headers.
pub struct Multipart {
    inner: multer::Multipart<'static>,
    raw: Arc<Mutex<BodyDataStream>>,
    seeking: Arc<AtomicBool>,
    seen: Arc<AtomicUsize>,
}

impl Multipart {
    /// The parts of `body`, separated by `boundary`, within `constraints`.
    pub fn new(body: Body, boundary: String, constraints: multer::Constraints) -> Self {
        let seeking = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        // multer reads the body through this handle, and `linger` the rest of it.
        let raw = Arc::new(Mutex::new(body.into_data_stream()));
        let chunks = futures_util::stream::unfold(Arc::clone(&raw), |raw| async move {
            let chunk = raw.lock().await.next().await;
            chunk.map(|chunk| (chunk, raw))
        });
        let counted = {
            let seeking = Arc::clone(&seeking);
            let seen = Arc::clone(&seen);
            chunks.map_err(io::Error::other).and_then(move |chunk| {
                let too_much = seeking.load(Ordering::Relaxed)
                    && seen.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len()
                        > MAX_PART_HEADERS;
                std::future::ready(if too_much {
                    Err(io::Error::other(format!(
                        "a part's headers are larger than {MAX_PART_HEADERS} bytes"
                    )))
                } else {
                    Ok(chunk)
                })
            })
        };
        Self {
            inner: multer::Multipart::with_constraints(counted, boundary, constraints),
            raw,
            seeking,
            seen,
        }
    }

    /// The next part, once its headers are read; `None` after the last.
    pub async fn next_field(&mut self) -> Result<Option<multer::Field<'static>>, PartError> {
        self.seen.store(0, Ordering::Relaxed);
        self.seeking.store(true, Ordering::Relaxed);
        let field = self.inner.next_field().await;
        self.seeking.store(false, Ordering::Relaxed);
        field.map_err(|error| {
            if self.seen.load(Ordering::Relaxed) > MAX_PART_HEADERS {
                PartError::HeadersTooLarge
            } else {
                PartError::Malformed(error)
            }
        })
    }

    /// Reads the rest of the body after the parts the caller wanted, before answering: the
    /// closing boundary, and any further parts up to [`MAX_PART_HEADERS`] bytes in all. What
    /// goes on past that, or cannot be read as parts, is left to [`Multipart::linger`].
    pub async fn finish(mut self) {
        self.seen.store(0, Ordering::Relaxed);
        self.seeking.store(true, Ordering::Relaxed);
        loop {
            match self.inner.next_field().await {
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(_) => return self.linger(),
            }
        }
    }

    /// After a refusal: reads what is left of the body in the background while the answer goes
    /// out, and throws it away, up to [`LINGER_BYTES`] and for at most [`LINGER_TIME`], so that
    /// a client still sending it gets to read the answer. Past those the connection is closed.
    pub fn linger(self) {
        let raw = self.raw;
        drop(self.inner);
        tokio::spawn(async move {
            let drain = async {
                let mut raw = raw.lock().await;
                let mut read = 0;
                while let Some(Ok(chunk)) = raw.next().await {
                    read += chunk.len();
                    if read > LINGER_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER_TIME, drain).await;
        });
    }
}

/// Why the next part could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// Its headers are larger than [`MAX_PART_HEADERS`].
    #[error("a part's headers are larger than {MAX_PART_HEADERS} bytes")]
    HeadersTooLarge,
    /// The body is not well-formed multipart, a constraint refused it, or it broke off.
    #[error(transparent)]
    Malformed(#[from] multer::Error),
}
