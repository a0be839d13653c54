//! runway's core: the domain (jobs, their statuses and transitions, events), the [`Store`]
//! trait every backend implements, configuration, the engine (dispatchers, leases, retries),
//! the command runner and the [`App`] value that ties them together.
//!
//! This crate never depends on an HTTP framework, an SQL driver or the wire types of
//! `runway-api`: backends and the server depend on it, not the other way round.

pub mod app;
pub mod artifacts;
pub mod bus;
pub mod clock;
pub mod config;
pub mod data_dir;
mod engine;
pub mod error;
pub mod event;
pub mod handler;
pub mod idempotency;
pub mod job;
pub mod job_order;
pub mod job_token;
pub mod keyed_insert;
pub mod log_text;
pub mod protocol;
pub mod queue_history;
mod report;
pub mod retry;
pub mod runner;
pub mod spawn;
pub mod spawn_under;
pub mod stop;
pub mod store;
pub mod submission;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time_range;
pub mod transition;
pub mod tree;
pub mod triggers;
pub mod users;
pub mod watch_filter;
pub mod watch_state;
pub mod watcher;

pub use app::{App, SubmitParams};
pub use clock::{Clock, SystemClock, Timestamp};
pub use config::Config;
pub use error::Error;
pub use job::{Job, JobId, JobStatus};
pub use store::{Store, StoreError};
