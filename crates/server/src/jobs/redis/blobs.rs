//! The shared blob store of a cluster: job inputs and outputs, which never go into Redis. A
//! folder every replica mounts (`file:///shared/dir`). Writes are atomic (a temporary file
//! renamed into place), so a reader never sees half a file; a sweeper deletes what is older
//! than the result TTL.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::Invalid;

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens `file:///path` (creating the folder).
    pub fn open(url: &str) -> Result<Self, Invalid> {
        let config = |reason: &str| Invalid(format!("--blob-store {url}: {reason}"));
        let path = url
            .strip_prefix("file://")
            .ok_or_else(|| config("only file:///absolute/path is supported"))?;
        if !path.starts_with('/') {
            return Err(config("the path must be absolute (file:///shared/dir)"));
        }
        let root = PathBuf::from(path);
        for folder in ["inputs", "outputs"] {
            std::fs::create_dir_all(root.join(folder)).map_err(|e| config(&e.to_string()))?;
        }
        Ok(BlobStore { root })
    }

    pub fn input_key(id: &uuid::Uuid) -> String {
        format!("inputs/{id}")
    }

    /// Outputs are per attempt, so a late writer never overwrites the run that was recorded.
    pub fn output_key(id: &uuid::Uuid, attempt: u32) -> String {
        format!("outputs/{id}-{attempt}.png")
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(key);
        let partial = path.with_extension(format!("partial-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&partial, bytes).await?;
        tokio::fs::rename(&partial, &path).await
    }

    pub async fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path(key)).await
    }

    /// Deletes a blob; one already gone is fine.
    pub async fn delete(&self, key: &str) {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(key, %err, "could not delete a blob"),
        }
    }

    /// Deletes every blob last written more than `age` ago; returns how many.
    pub fn sweep(&self, age: Duration) -> usize {
        let cutoff = SystemTime::now() - age;
        ["inputs", "outputs"]
            .iter()
            .map(|folder| sweep_folder(&self.root.join(folder), cutoff))
            .sum()
    }
}

fn sweep_folder(folder: &Path, cutoff: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified < cutoff)
        })
        .filter(|entry| std::fs::remove_file(entry.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_are_written_whole_read_back_and_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&format!("file://{}", dir.path().display())).unwrap();
        let id = uuid::Uuid::new_v4();
        store
            .put(&BlobStore::output_key(&id, 1), b"png")
            .await
            .unwrap();
        store.put(&BlobStore::input_key(&id), b"in").await.unwrap();
        assert_eq!(
            store.get(&BlobStore::output_key(&id, 1)).await.unwrap(),
            b"png"
        );
        assert_eq!(store.sweep(Duration::from_secs(60)), 0);
        assert_eq!(store.sweep(Duration::ZERO), 2);
        assert!(store.get(&BlobStore::output_key(&id, 1)).await.is_err());
        store.delete(&BlobStore::input_key(&id)).await;
        assert!(BlobStore::open("s3://bucket").is_err());
        assert!(BlobStore::open("file://relative").is_err());
    }
}
