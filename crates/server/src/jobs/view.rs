//! A job as a request sees it: its state, its output and its times.

use std::path::PathBuf;

use axum::body::Body;
use bytes::Bytes;
use serde::Serialize;
use tokio::time::Instant;

use crate::auth::Charge;

/// Bytes read from a file output at a time: each read is a trip to Tokio's blocking pool, and
/// each chunk a write to the socket.
const FILE_CHUNK: usize = 256 << 10;

/// Where a finished output is kept.
#[derive(Debug, Clone)]
pub enum Output {
    Memory(Bytes),
    /// A spooled output, or a cluster's blob.
    File(PathBuf),
}

impl Output {
    /// The PNG as a response body, and its length (a file is streamed in large chunks).
    pub async fn into_body(self) -> std::io::Result<(Body, u64)> {
        let path = match self {
            Output::Memory(bytes) => {
                let length = bytes.len() as u64;
                return Ok((Body::from(bytes), length));
            }
            Output::File(path) => path,
        };
        let file = tokio::fs::File::open(path).await?;
        let length = file.metadata().await?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, FILE_CHUNK);
        Ok((Body::from_stream(stream), length))
    }
}

#[derive(Debug, Clone)]
pub enum JobState {
    Queued,
    Processing,
    Completed(Output),
    Failed(String),
}

impl JobState {
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Queued => "QUEUED",
            JobState::Processing => "PROCESSING",
            JobState::Completed(_) => "COMPLETED",
            JobState::Failed(_) => "FAILED",
        }
    }
}

/// Queue, inference and total time in seconds, as reported in `metrics`; for keys with a
/// balance (load-testing mode) also the cost charged and the balance after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Metrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_credits: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_time: Option<f64>,
}

impl Metrics {
    /// Times from submission, start (if the job started) and end (if it ended).
    pub fn between(
        submitted: Instant,
        started: Option<Instant>,
        finished: Option<Instant>,
    ) -> Self {
        let after = |t: Instant| (t - submitted).as_secs_f64();
        Self::from_offsets(started.map(after), finished.map(after))
    }

    /// Times from the seconds after submission at which the job started and ended.
    pub fn from_offsets(started: Option<f64>, finished: Option<f64>) -> Self {
        let round = |seconds: f64| Some((seconds * 1000.0).round() / 1000.0);
        Metrics {
            cost: None,
            remaining_credits: None,
            queue_time: started.or(finished).and_then(round),
            inference_time: match (started, finished) {
                (Some(s), Some(f)) => round(f - s),
                _ => None,
            },
            total_time: finished.and_then(round),
        }
    }

    /// With the cost charged and the balance after it.
    pub fn charged(self, charge: Option<Charge>) -> Self {
        Metrics {
            cost: charge.map(|c| c.cost),
            remaining_credits: charge.map(|c| c.remaining),
            ..self
        }
    }
}

/// A job as seen by a request.
#[derive(Debug, Clone)]
pub struct JobView {
    pub state: JobState,
    pub metrics: Metrics,
    /// The fault rule that made the job fail (load-testing mode).
    pub fault: Option<String>,
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn spooled_outputs_are_streamed_in_large_chunks() {
        let spool = tempfile::tempdir().unwrap();
        let path = spool.path().join("output.png");
        std::fs::write(&path, vec![7; 1 << 20]).unwrap();
        let (body, length) = Output::File(path).into_body().await.unwrap();
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
