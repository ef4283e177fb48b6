//! Where v2 jobs live, chosen once at start: this process's memory (one machine; the default)
//! or a Redis shared by several replicas (`--redis-url`, see `cluster`). Requests see the same
//! behaviour from both. (Submitting differs: in memory the receiving process fetches the image
//! and queues the job itself; a cluster records and queues it in Redis at once.)

use std::sync::Arc;

use axum::body::Body;
use uuid::Uuid;

use crate::cluster::Cluster;
use crate::error::ServerError;
use crate::jobs::{JobStore, JobView, Output};

/// Bytes read from a spooled (or blob) output at a time: each read is a trip to Tokio's blocking
/// pool, and each chunk a write to the socket.
const FILE_CHUNK: usize = 256 << 10;

pub enum Store {
    Memory(Arc<JobStore>),
    Redis(Arc<Cluster>),
}

impl Store {
    /// The job, unless unknown or expired.
    pub async fn view(&self, id: &Uuid) -> Result<Option<JobView>, ServerError> {
        match self {
            Store::Memory(jobs) => Ok(jobs.view(id)),
            Store::Redis(cluster) => cluster.view(id).await,
        }
    }

    /// A completed job's PNG, and its length when it is streamed from a file.
    pub async fn output(&self, output: Output) -> std::io::Result<(Body, u64)> {
        let file = match (output, self) {
            (Output::Memory(bytes), _) => {
                let length = bytes.len() as u64;
                return Ok((Body::from(bytes), length));
            }
            (Output::Spooled(path), _) => tokio::fs::File::open(path).await?,
            (Output::Blob(key), Store::Redis(cluster)) => cluster.output(&key).await?,
            (Output::Blob(_), Store::Memory(_)) => return Err(std::io::ErrorKind::NotFound.into()),
        };
        let length = file.metadata().await?.len();
        Ok((
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                file, FILE_CHUNK,
            )),
            length,
        ))
    }

    /// Readiness of the store itself: a cluster's Redis must answer.
    pub async fn check(&self) -> Result<(), ServerError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(cluster) => cluster.ping().await,
        }
    }

    /// Bytes of outputs held in this process's memory.
    pub fn memory_used(&self) -> usize {
        match self {
            Store::Memory(jobs) => jobs.memory_used(),
            Store::Redis(_) => 0,
        }
    }

    /// Jobs on record in this process's memory.
    pub fn len(&self) -> usize {
        match self {
            Store::Memory(jobs) => jobs.len(),
            Store::Redis(_) => 0,
        }
    }

    /// At shutdown, after the drain deadline: a cluster gives the jobs still running here to
    /// the other replicas (in memory they die with the process).
    pub async fn release_running(&self) {
        if let Store::Redis(cluster) = self {
            cluster.release_running().await;
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn spooled_outputs_are_streamed_in_large_chunks() {
        let spool = tempfile::tempdir().unwrap();
        let path = spool.path().join("output.png");
        std::fs::write(&path, vec![7; 1 << 20]).unwrap();
        let jobs = JobStore::start(Duration::from_secs(60), 0, Some(spool.path())).unwrap();
        let (body, length) = Store::Memory(jobs)
            .output(Output::Spooled(path))
            .await
            .unwrap();
        assert_eq!(length, 1 << 20);
        let chunks: Vec<usize> = body
            .into_data_stream()
            .map(|chunk| chunk.unwrap().len())
            .collect()
            .await;
        assert_eq!(chunks.iter().sum::<usize>(), 1 << 20);
        assert!(chunks.len() <= 4, "{} chunks", chunks.len());
    }
}
