//! What the load-testing mode decided for one job at admission, carried with the job (into a
//! cluster's record too) and applied around its run by the worker: a target processing time to
//! wait out, or a fault rule that fails the job or crashes the process running it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::faults::JobFault;
use crate::error::JobError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobPlan {
    /// Target PROCESSING time: after the real work the job waits out the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Duration>,
    /// The fault rule that fired for the job, and what it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<(String, JobFault)>,
}

impl JobPlan {
    /// The injected failure the job ends with instead of running; with a `crash` rule the
    /// process stops here.
    pub fn injected(&self) -> Option<JobError> {
        match &self.fault {
            None => None,
            Some((_, JobFault::Fail(message))) => Some(JobError::InjectedFailure(message.clone())),
            Some((rule, JobFault::Crash)) => {
                tracing::error!(rule, "injected crash: this process stops now");
                std::process::abort()
            }
        }
    }

    /// The fault rule behind a failure of the job.
    pub fn rule(&self) -> Option<String> {
        self.fault.as_ref().map(|(rule, _)| rule.clone())
    }

    /// Whether the job keeps its place until its target time: then it also encodes in it,
    /// instead of handing the place to the next job while it encodes.
    pub fn holds_place(&self) -> bool {
        self.latency.is_some()
    }

    /// Waits out the rest of the target time of a job started at `started`.
    pub async fn wait_out(&self, started: Instant) {
        if let Some(latency) = self.latency {
            tokio::time::sleep_until(started + latency).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_survives_a_record() {
        let plan = JobPlan {
            latency: Some(Duration::from_millis(1500)),
            fault: Some(("flaky".into(), JobFault::Fail("GPU out of memory".into()))),
        };
        let text = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<JobPlan>(&text).unwrap(), plan);
        assert_eq!(serde_json::to_string(&JobPlan::default()).unwrap(), "{}");
        assert!(plan.holds_place() && !JobPlan::default().holds_place());
        assert!(
            matches!(plan.injected(), Some(JobError::InjectedFailure(m)) if m == "GPU out of memory")
        );
    }
}
