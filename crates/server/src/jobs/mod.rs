//! Where v2 jobs live, behind one trait: this process's memory (one machine; the default) or a
//! Redis shared by several replicas (`--redis-url`). Requests and workers see the same
//! lifecycle from both: a job is submitted (QUEUED), begun by a worker (PROCESSING), and ends
//! COMPLETED with an output or FAILED with an error; its record expires a fixed time after
//! submission.
//!
//! A backend hands a submitted job straight back when this process should run it (memory), or
//! keeps it for whichever replica claims it (Redis). Either way the worker gets a [`Job`] whose
//! [`Lease`] records its outcome; the worker never knows which backend it came from.

mod backend;
mod memory;
mod redis;
mod view;

pub use self::backend::{Job, JobBackend, Lease, NewJob};
pub use self::redis::{RedisConfig, RedisJobs};
pub use self::view::{JobState, JobView, Metrics};
pub use memory::MemoryJobs;
