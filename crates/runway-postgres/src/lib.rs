//! runway's [`Store`](runway_core::Store) on PostgreSQL, for several servers sharing one
//! database: a connection pool, the schema with its migrations (run at every start, safe when
//! several servers start at once), the store, and the follower that puts every server's
//! committed changes on this server's bus in `seq` order.
//!
//! One database per runway installation. The schema lives in the connection's default schema
//! (`search_path`); its version is kept in `runway_schema`.

mod clock;
mod follower;
mod held_jobs;
mod job_query;
mod jobs;
mod migrations;
mod rows;
mod store;
mod users;
mod writes;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

pub use clock::DatabaseClock;
pub use migrations::{MIGRATIONS, MigrateError};
pub use store::PgStore;

use std::sync::Arc;

use runway_core::Store;
use runway_core::bus::Bus;

/// Connections kept open to the database by one server.
const POOL_SIZE: usize = 16;
/// How long a statement waits for a free connection, and a new connection to be made, before
/// the request answers 503.
const POOL_WAIT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A transaction of runway's is never idle but between two statements of a running write.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);
/// A peer that answers nothing for this long is taken for dead.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "`{url}` is not a PostgreSQL URL ({reason}); write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
    )]
    BadUrl { url: String, reason: String },
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

/// A pool of connections to a migrated database.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    config: tokio_postgres::Config,
    /// Where it connects, for messages.
    target: String,
}

impl Database {
    /// Connects to `url` and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Database, ConnectError> {
        let config =
            tokio_postgres::Config::from_str(url).map_err(|error| ConnectError::BadUrl {
                url: redacted(url),
                reason: error.to_string(),
            })?;
        let target = describe(&config);
        let mut config = config;
        // A server that stops answering (power cut, a paused VM) must not hold its locks for
        // hours: the database ends its idle transactions, and both sides notice a dead peer.
        let options = format!(
            "{} -c idle_in_transaction_session_timeout={}",
            config.get_options().unwrap_or_default(),
            IDLE_IN_TRANSACTION.as_millis()
        );
        config
            .options(options.trim_start())
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(3)
            .tcp_user_timeout(TCP_USER_TIMEOUT);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|error| ConnectError::BadUrl {
                url: redacted(url),
                reason: error.to_string(),
            })?;
        let mut client = pool
            .get()
            .await
            .map_err(|error| ConnectError::Unreachable {
                target: target.clone(),
                reason: error.to_string(),
            })?;
        migrations::migrate(&mut client).await?;
        drop(client);
        Ok(Database {
            pool,
            config,
            target,
        })
    }

    /// The store on this database, publishing every server's committed changes on `bus`.
    /// Starts the tasks that follow the other servers; call it inside the runtime.
    pub async fn store(&self, bus: Bus) -> Result<PgStore, ConnectError> {
        let last = {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT seq FROM event_clock", &[])
                .await
                .map_err(|error| self.unreachable(error))?;
            row.get::<_, i64>(0)
        };
        let (follower, logs) = follower::Follower::new(bus, last);
        let follower = Arc::new(follower);
        let store = PgStore::new(self.pool.clone(), Arc::clone(&follower));
        tokio::spawn(follower::listen(self.config.clone(), follower));
        tokio::spawn(follower::follow(store.clone()));
        tokio::spawn(follower::follow_logs(store.clone(), logs));
        // A store is only ever used as one.
        let _: &dyn Store = &store;
        Ok(store)
    }

    /// The database's clock, for every server on it to read "now" from.
    pub async fn clock(&self) -> Result<Arc<DatabaseClock>, ConnectError> {
        DatabaseClock::start(self.pool.clone())
            .await
            .map_err(|reason| ConnectError::Unreachable {
                target: self.target.clone(),
                reason,
            })
    }

    /// Where it connects (hosts, ports, database; never a password), for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i32, ConnectError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT coalesce(max(version), 0) FROM runway_schema", &[])
            .await
            .map_err(|error| self.unreachable(error))?;
        Ok(row.get(0))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, ConnectError> {
        self.pool
            .get()
            .await
            .map_err(|error| self.unreachable(error))
    }

    fn unreachable(&self, error: impl std::fmt::Display) -> ConnectError {
        ConnectError::Unreachable {
            target: self.target.clone(),
            reason: error.to_string(),
        }
    }
}

/// Where a config points, for messages: hosts and ports, never a password.
fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "{} (port {}, database {})",
        if hosts.is_empty() {
            "localhost".to_string()
        } else {
            hosts.join(",")
        },
        if ports.is_empty() {
            "5432".to_string()
        } else {
            ports.join(",")
        },
        config.get_dbname().unwrap_or("of the user's name")
    )
}

/// A URL with its password replaced, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:…{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_password_never_shows_in_a_message() {
        assert_eq!(
            redacted("postgres://runway:s3cret@db:5432/runway"),
            "postgres://runway:…@db:5432/runway"
        );
        assert_eq!(
            redacted("postgres://runway@db/runway"),
            "postgres://runway@db/runway"
        );
        assert_eq!(redacted("not a url"), "not a url");
    }
}
