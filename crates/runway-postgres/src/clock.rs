//! Every server on one database reads "now" from the database's clock, so that a lease one
//! server grants and another judges expired, or a due time one sets and another claims by,
//! mean the same instant whatever the servers' own clocks say. Asking the database at every
//! read would cost a round trip; the clock keeps the offset between the two instead, measured
//! at start and again every [`MEASURE_EVERY`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use deadpool_postgres::Pool;
use runway_core::clock::{Clock, SystemClock, Timestamp, micros_to_timestamp};

/// How often the offset to the database's clock is measured again.
const MEASURE_EVERY: Duration = Duration::from_secs(60);

/// The database's clock, read from this server's.
#[derive(Debug, Default)]
pub struct DatabaseClock {
    /// The database's clock minus this server's, in microseconds.
    offset: AtomicI64,
}

impl Clock for DatabaseClock {
    fn now(&self) -> Timestamp {
        let local = SystemClock.now().timestamp_micros();
        micros_to_timestamp(local.saturating_add(self.offset.load(Ordering::Relaxed)))
    }
}

impl DatabaseClock {
    /// The offset measured now, and measured again in the background for the process's life.
    pub(crate) async fn start(pool: Pool) -> Result<Arc<DatabaseClock>, String> {
        let clock = Arc::new(DatabaseClock::default());
        let offset = measure(&pool).await?;
        clock.offset.store(offset, Ordering::Relaxed);
        tracing::info!(
            offset_ms = offset / 1000,
            "the database's clock is ahead of this server's by"
        );
        let kept = Arc::clone(&clock);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(MEASURE_EVERY).await;
                match measure(&pool).await {
                    Ok(offset) => kept.offset.store(offset, Ordering::Relaxed),
                    Err(error) => tracing::warn!(%error, "cannot read the database's clock"),
                }
            }
        });
        Ok(clock)
    }

    /// The offset in microseconds.
    pub fn offset_micros(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }
}

/// The database's clock minus this server's, taking the middle of the round trip as the
/// instant the database read its clock.
async fn measure(pool: &Pool) -> Result<i64, String> {
    let client = pool.get().await.map_err(|error| error.to_string())?;
    let before = SystemClock.now().timestamp_micros();
    let row = client
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
            &[],
        )
        .await
        .map_err(|error| error.to_string())?;
    let after = SystemClock.now().timestamp_micros();
    let database: i64 = row.get(0);
    Ok(database - (before + (after - before) / 2))
}
