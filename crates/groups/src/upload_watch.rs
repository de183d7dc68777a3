//! The watch on an upload stream: its size limit, the bytes kept for the content sniff, and
//! whose fault a failed write was.

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cadre_domain::ByteStream;
use futures_util::StreamExt;

use crate::GroupError;

/// How many leading bytes of an upload are kept for the content sniff.
const SNIFF_BYTES: usize = 512;

/// Watches an upload stream: enforces the size limit, keeps the first bytes for the content
/// sniff, and remembers whether the stream itself failed, so that a volume error can be told
/// apart from a client's.
#[derive(Clone)]
pub(crate) struct UploadWatch {
    limit: u64,
    state: Arc<Mutex<WatchState>>,
}

#[derive(Default)]
struct WatchState {
    head: Vec<u8>,
    too_large: bool,
    interrupted: Option<String>,
}

impl UploadWatch {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            state: Arc::default(),
        }
    }

    pub(crate) fn wrap(&self, content: ByteStream) -> ByteStream {
        let watch = self.clone();
        let mut seen: u64 = 0;
        Box::pin(content.map(move |chunk: io::Result<Bytes>| {
            let mut state = watch.lock();
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    state.interrupted = Some(error.to_string());
                    return Err(error);
                }
            };
            seen = seen.saturating_add(chunk.len() as u64);
            if seen > watch.limit {
                state.too_large = true;
                return Err(io::Error::other("the upload exceeds the size limit"));
            }
            let room = SNIFF_BYTES.saturating_sub(state.head.len());
            state
                .head
                .extend_from_slice(&chunk[..room.min(chunk.len())]);
            Ok(chunk)
        }))
    }

    pub(crate) fn head(&self) -> Vec<u8> {
        self.lock().head.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatchState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The error to report for a failed write: the limit, the client's stream, or the volume.
    pub(crate) fn error(&self, error: io::Error) -> GroupError {
        let state = self.lock();
        if state.too_large {
            GroupError::TooLarge { limit: self.limit }
        } else if let Some(reason) = &state.interrupted {
            GroupError::Interrupted(reason.clone())
        } else if matches!(
            error.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        ) {
            tracing::error!(%error, "the file volume is full");
            GroupError::VolumeFull
        } else {
            tracing::error!(%error, "file volume write failed");
            GroupError::Volume(error.to_string())
        }
    }
}
