//! One file per REST resource.

pub mod artifacts;
pub mod health;
pub mod hooks;
pub mod jobs;
pub mod queues;
pub mod signin;
pub mod trees;
pub mod triggers;
pub mod types;
pub mod users;
