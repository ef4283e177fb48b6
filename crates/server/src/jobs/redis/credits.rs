//! Credits of the jobs a replica admitted. Balances live in each replica's memory, so the
//! admitting replica holds a job's credits until the job ends: it charges them when the job
//! completes (at once when it ran the job itself, else when its settling task sees the record
//! COMPLETED) and writes the charge into the record; a job that fails or expires releases them.

use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use uuid::Uuid;

use super::{unavailable, RedisJobs};
use crate::auth::Settle;

/// How often the settling task looks at the records of jobs holding credits.
const SETTLE_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Held(DashMap<Uuid, Box<dyn Settle>>);

impl Held {
    pub fn insert(&self, id: Uuid, credits: Box<dyn Settle>) {
        self.0.insert(id, credits);
    }

    fn ids(&self) -> Vec<Uuid> {
        self.0.iter().map(|entry| *entry.key()).collect()
    }
}

impl RedisJobs {
    /// Ends the hold of a job this replica admitted: charged (and the charge recorded) when it
    /// completed, released otherwise. Nothing for jobs admitted elsewhere.
    pub(super) async fn settle(&self, id: &Uuid, completed: bool) {
        let Some((_, credits)) = self.held.0.remove(id) else {
            return;
        };
        if !completed {
            return;
        }
        let charge = credits.charge();
        let mut redis = self.redis.clone();
        let recorded = self
            .script("charged")
            .key(self.job_key(id))
            .arg(charge.cost.to_string())
            .arg(charge.remaining.to_string())
            .invoke_async::<i64>(&mut redis)
            .await
            .map_err(unavailable);
        if let Err(err) = recorded {
            tracing::warn!(job_id = %id, %err, "could not record a job's charge");
        }
    }

    /// The state of a job's record, `None` when it is gone.
    async fn state(&self, id: &Uuid) -> Result<Option<String>, crate::error::JobError> {
        let mut redis = self.redis.clone();
        ::redis::cmd("HGET")
            .arg(self.job_key(id))
            .arg("state")
            .query_async(&mut redis)
            .await
            .map_err(unavailable)
    }
}

/// Settles the held jobs that ended on other replicas, for as long as the backend lives.
pub async fn settle_task(jobs: Weak<RedisJobs>) {
    loop {
        tokio::time::sleep(SETTLE_EVERY).await;
        let Some(jobs) = jobs.upgrade() else {
            return;
        };
        settle_ended(&jobs).await;
    }
}

async fn settle_ended(jobs: &Arc<RedisJobs>) {
    for id in jobs.held.ids() {
        match jobs.state(&id).await.as_ref().map(Option::as_deref) {
            Ok(Some("COMPLETED")) => jobs.settle(&id, true).await,
            Ok(Some("FAILED") | None) => jobs.settle(&id, false).await,
            Ok(Some(_)) => {}
            // Redis is away: look again later.
            Err(_) => return,
        }
    }
}
