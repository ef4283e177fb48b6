//! Reading a cluster's job records and scripts: a record's fields as a [`JobView`], and
//! `scripts.lua` split into its steps.

use std::collections::HashMap;

use ::redis::Script;

use super::blobs::BlobStore;
use crate::error::JobError;
use crate::jobs::view::{JobState, JobView, Metrics, Output};

pub fn corrupt(reason: String) -> JobError {
    JobError::StoreUnavailable(format!("a job record is not readable: {reason}"))
}

/// A job record as a request sees it; `None` for a missing (expired, unknown) one.
pub fn job_view(blobs: &BlobStore, fields: &HashMap<String, String>) -> Option<JobView> {
    let ms = |name: &str| fields.get(name).and_then(|v| v.parse::<u64>().ok());
    let submitted = ms("submitted")?;
    let text = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    let state = match fields.get("state")?.as_str() {
        "QUEUED" => JobState::Queued,
        "PROCESSING" => JobState::Processing,
        "COMPLETED" => JobState::Completed(Output::File(blobs.path(&text("output")?))),
        _ => JobState::Failed(text("error").unwrap_or_default()),
    };
    let after = |t: Option<u64>| t.map(|t| t.saturating_sub(submitted) as f64 / 1000.0);
    let number = |name: &str| fields.get(name).and_then(|v| v.parse::<f64>().ok());
    Some(JobView {
        metrics: Metrics {
            cost: number("cost"),
            remaining_credits: number("remaining"),
            ..Metrics::from_offsets(after(ms("started")), after(ms("finished")))
        },
        state,
        fault: text("fault"),
    })
}

/// The scripts of `scripts.lua` by name, each with the helpers above the first `--@` line.
pub fn split_scripts(source: &str) -> HashMap<String, Script> {
    let mut parts = source.split("\n--@ ");
    let helpers = parts.next().expect("scripts.lua starts with its helpers");
    parts
        .map(|part| {
            let (name, body) = part.split_once('\n').expect("a script has a body");
            (
                name.trim().to_string(),
                Script::new(&format!("{helpers}\n{body}")),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_its_script() {
        let scripts = split_scripts(include_str!("scripts.lua"));
        let mut names: Vec<&str> = scripts.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "charged",
                "claim",
                "complete",
                "fail",
                "heartbeat",
                "release",
                "submit"
            ]
        );
    }

    #[test]
    fn a_record_reads_as_a_job() {
        let record = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(&format!("file://{}", dir.path().display())).unwrap();
        assert!(job_view(&blobs, &record(&[])).is_none());
        let done = job_view(
            &blobs,
            &record(&[
                ("state", "COMPLETED"),
                ("submitted", "1000"),
                ("started", "1300"),
                ("finished", "2000"),
                ("output", "outputs/x-1.png"),
            ]),
        )
        .unwrap();
        assert!(
            matches!(done.state, JobState::Completed(Output::File(ref path)) if path == &blobs.path("outputs/x-1.png"))
        );
        assert_eq!(
            (
                done.metrics.queue_time,
                done.metrics.inference_time,
                done.metrics.total_time
            ),
            (Some(0.3), Some(0.7), Some(1.0))
        );
        let failed = job_view(
            &blobs,
            &record(&[
                ("state", "FAILED"),
                ("submitted", "1000"),
                ("finished", "1500"),
                ("error", "boom"),
                ("fault", "flaky"),
            ]),
        )
        .unwrap();
        assert!(matches!(failed.state, JobState::Failed(ref e) if e == "boom"));
        assert_eq!(failed.fault.as_deref(), Some("flaky"));
    }
}
