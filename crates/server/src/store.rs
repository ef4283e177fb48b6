//! Where v2 jobs live, chosen once at start: this process's memory (one machine; the default)
//! or a Redis shared by several replicas (`--redis-url`, see `cluster`). Requests see the same
//! behaviour from both.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use uuid::Uuid;

use crate::cluster::Cluster;
use crate::error::ServerError;
use crate::jobs::{JobStore, JobView, Output};
use crate::params::JobSpec;
use crate::queue::{Emulated, Queue, Slot};

pub enum Store {
    Memory(Arc<JobStore>),
    Redis(Arc<Cluster>),
}

impl Store {
    /// Records a new QUEUED job. A cluster refuses it (429) when the jobs waiting cluster-wide
    /// fill the queue.
    pub async fn create(
        &self,
        id: Uuid,
        spec: &JobSpec,
        emulated: &Emulated,
    ) -> Result<(), ServerError> {
        match self {
            Store::Memory(jobs) => {
                jobs.insert(id);
                Ok(())
            }
            Store::Redis(cluster) => {
                cluster
                    .create(&id, spec, emulated.latency, emulated.failure.as_ref())
                    .await
            }
        }
    }

    /// The job's input has arrived: into this process's queue, or into the cluster's stream for
    /// whichever replica has a free place (the local slot is then given back).
    pub async fn enqueue(
        &self,
        queue: &Queue,
        slot: Slot,
        id: Uuid,
        input: Bytes,
        spec: JobSpec,
        emulated: Emulated,
    ) {
        match self {
            Store::Memory(_) => queue.submit(slot, id, input, spec, emulated),
            Store::Redis(cluster) => {
                if let Err(err) = cluster.enqueue(&id, &input).await {
                    self.fail_queued(id, &err.to_string()).await;
                }
            }
        }
    }

    /// Fails a job that never reached a queue (its image could not be fetched or stored).
    pub async fn fail_queued(&self, id: Uuid, error: &str) {
        match self {
            Store::Memory(jobs) => jobs.fail(&id, error.to_string()),
            Store::Redis(cluster) => {
                if let Err(err) = cluster.fail_queued(&id, error).await {
                    tracing::warn!(%err, "could not record the failure; the job stays QUEUED until it expires");
                }
            }
        }
    }

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
            Body::from_stream(tokio_util::io::ReaderStream::new(file)),
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
