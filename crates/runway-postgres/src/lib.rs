//! runway's [`Store`](runway_core::Store) on PostgreSQL, for several servers sharing one
//! database: a connection pool, the schema with its migrations (run at every start, safe when
//! several servers start at once), the store, and the follower that puts every server's
//! committed changes on this server's bus in `seq` order.
//!
//! One database per runway installation. The schema lives in the connection's default schema
//! (`search_path`); its version is kept in `runway_schema`.

mod clock;
mod follower;
mod job_query;
mod jobs;
mod migrations;
mod rows;
mod store;
mod writes;

use std::str::FromStr;

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
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
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
        let follower = Arc::new(follower::Follower::new(bus, last));
        let store = PgStore::new(self.pool.clone(), Arc::clone(&follower));
        tokio::spawn(follower::listen(self.config.clone(), follower));
        tokio::spawn(follower::follow(store.clone()));
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
