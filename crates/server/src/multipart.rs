//! `multipart/form-data` bodies whose part headers are bounded: multer reads a part's headers
//! whole, and in time that grows faster than their size, so a client could send one header
//! of hundreds of megabytes. Here the bytes read while looking for the next part (its boundary
//! and headers) are counted, and past [`MAX_PART_HEADERS`] the body fails.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::body::Body;
use futures_util::TryStreamExt;

/// The most bytes read while looking for the next part: its boundary and headers (and what
/// is left of a part the caller skipped).
pub const MAX_PART_HEADERS: usize = 1 << 20;

/// A multipart body read part by part, with bounded part headers.
pub struct Multipart {
    inner: multer::Multipart<'static>,
    seeking: Arc<AtomicBool>,
    seen: Arc<AtomicUsize>,
}

impl Multipart {
    /// The parts of `body`, separated by `boundary`, within `constraints`.
    pub fn new(body: Body, boundary: String, constraints: multer::Constraints) -> Self {
        let seeking = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let counted = {
            let seeking = Arc::clone(&seeking);
            let seen = Arc::clone(&seen);
            body.into_data_stream()
                .map_err(io::Error::other)
                .and_then(move |chunk| {
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

    /// Reads the rest of the body after the parts the caller wanted: the closing boundary,
    /// and any further parts up to [`MAX_PART_HEADERS`] bytes in all. Answering before the
    /// body ended would close the connection under a client still writing it, whose last
    /// write could then reset the connection and lose the answer. A body that goes on past
    /// the bound is left unread (and its connection closed).
    pub async fn finish(mut self) {
        self.seen.store(0, Ordering::Relaxed);
        self.seeking.store(true, Ordering::Relaxed);
        while let Ok(Some(_)) = self.inner.next_field().await {}
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
