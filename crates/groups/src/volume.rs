//! A [`FileVolume`] on a local folder.

use std::io;
use std::path::PathBuf;

use async_trait::async_trait;
use cadre_domain::{ByteStream, FileVolume};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

/// How much of a file a download reads at once.
const READ_CHUNK: usize = 64 * 1024;

/// Content kept as files under a folder: `objects/<first two characters>/<key>`, written to
/// `tmp/<key>.part` first and renamed into place once complete and synced, so a key never names
/// partial content; deleting a key removes both.
#[derive(Debug, Clone)]
pub struct LocalVolume {
    root: PathBuf,
}

impl LocalVolume {
    /// A volume in `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where the content of `key` lives. Keys are opaque ids made by cadre; anything that could
    /// leave the folder is refused.
    fn path(&self, key: &str) -> io::Result<PathBuf> {
        let valid = (2..=64).contains(&key.len())
            && key
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{key:?} is not a volume key"),
            ));
        }
        Ok(self.root.join("objects").join(&key[..2]).join(key))
    }

    /// Where the content of `key` is written until it is complete. Keys are made afresh for
    /// each upload, so one writer has each.
    fn part_path(&self, key: &str) -> io::Result<PathBuf> {
        self.path(key)?;
        Ok(self.root.join("tmp").join(format!("{key}.part")))
    }
}

#[async_trait]
impl FileVolume for LocalVolume {
    async fn write(&self, key: &str, mut content: ByteStream) -> io::Result<u64> {
        let path = self.path(key)?;
        let tmp = self.part_path(key)?;
        if let Some(tmp_dir) = tmp.parent() {
            tokio::fs::create_dir_all(tmp_dir).await?;
        }
        let written = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let mut size = 0u64;
            while let Some(chunk) = content.next().await {
                let chunk = chunk?;
                file.write_all(&chunk).await?;
                size += chunk.len() as u64;
            }
            file.sync_all().await?;
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::rename(&tmp, &path).await?;
            Ok(size)
        }
        .await;
        if written.is_err() {
            // Best effort: the temporary file is never read, whether or not this succeeds.
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written
    }

    async fn read(&self, key: &str) -> io::Result<ByteStream> {
        let file = tokio::fs::File::open(self.path(key)?).await?;
        Ok(Box::pin(ReaderStream::with_capacity(file, READ_CHUNK)))
    }

    /// Removes the content of `key`, and what a write of it left half done (a process killed
    /// mid-upload leaves its partial content in `tmp/`).
    async fn delete(&self, key: &str) -> io::Result<()> {
        for path in [self.path(key)?, self.part_path(key)?] {
            match tokio::fs::remove_file(path).await {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn chunks(parts: Vec<io::Result<&'static str>>) -> ByteStream {
        Box::pin(futures_util::stream::iter(parts.into_iter().map(|part| {
            part.map(|text| Bytes::from_static(text.as_bytes()))
        })))
    }

    async fn read_all(volume: &LocalVolume, key: &str) -> io::Result<Vec<u8>> {
        let mut stream = volume.read(key).await?;
        let mut content = Vec::new();
        while let Some(chunk) = stream.next().await {
            content.extend_from_slice(&chunk?);
        }
        Ok(content)
    }

    #[tokio::test]
    async fn content_round_trips_and_deletes_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let volume = LocalVolume::new(dir.path());
        let size = volume
            .write("abc123", chunks(vec![Ok("hello "), Ok("world")]))
            .await
            .unwrap();
        assert_eq!(size, 11);
        assert_eq!(read_all(&volume, "abc123").await.unwrap(), b"hello world");
        volume.delete("abc123").await.unwrap();
        volume.delete("abc123").await.unwrap();
        assert_eq!(
            read_all(&volume, "abc123").await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn deleting_a_key_removes_what_a_killed_write_left() {
        let dir = tempfile::tempdir().unwrap();
        let volume = LocalVolume::new(dir.path());
        // What a process killed mid-write leaves: the partial content, never renamed.
        let part = volume.part_path("abc123").unwrap();
        std::fs::create_dir_all(part.parent().unwrap()).unwrap();
        std::fs::write(&part, "partial").unwrap();
        volume.delete("abc123").await.unwrap();
        assert!(!part.exists());
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let volume = LocalVolume::new(dir.path());
        let error = volume
            .write(
                "abc123",
                chunks(vec![
                    Ok("partial"),
                    Err(io::Error::other("client went away")),
                ]),
            )
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "client went away");
        assert_eq!(
            read_all(&volume, "abc123").await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let leftovers = std::fs::read_dir(dir.path().join("tmp")).unwrap().count();
        assert_eq!(leftovers, 0, "the temporary file was removed");
    }

    #[tokio::test]
    async fn keys_cannot_leave_the_folder() {
        let volume = LocalVolume::new("/nonexistent");
        for key in ["../etc", "a/b", "", "x", "a.b"] {
            assert_eq!(
                volume.delete(key).await.unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{key:?}"
            );
        }
    }
}
