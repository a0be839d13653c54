//! The PostgreSQL backend against a real server: `RUNWAY_TEST_DATABASE` names one where the
//! tests may create databases (`./scripts/test` starts a throwaway one). Each test works in a
//! database of its own, dropped at its end.

use std::sync::atomic::{AtomicU32, Ordering};

use runway_postgres::{ConnectError, Database, MIGRATIONS, MigrateError};
use tokio_postgres::NoTls;

/// A database of its own for one test; dropped with it.
struct Fresh {
    url: String,
    name: String,
    admin: String,
}

impl Fresh {
    async fn new() -> Fresh {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = std::env::var("RUNWAY_TEST_DATABASE").expect(
            "RUNWAY_TEST_DATABASE names the PostgreSQL server the tests use; ./scripts/test starts one",
        );
        let name = format!(
            "runway_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        execute(&admin, &format!("CREATE DATABASE {name}")).await;
        Fresh {
            url: with_database(&admin, &name),
            name,
            admin,
        }
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Dropped from a thread of its own: a test's runtime may be shutting down.
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(execute(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ));
        })
        .join()
        .unwrap();
    }
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let slash = base.rfind('/').expect("a URL with a path");
    let scheme_end = base.find("://").map_or(0, |at| at + 3);
    let base = if slash >= scheme_end {
        &base[..slash]
    } else {
        base
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

async fn execute(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = driver.await;
}

async fn query_strings(url: &str, sql: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    let rows = client.query(sql, &[]).await.unwrap();
    drop(client);
    let _ = driver.await;
    rows.iter().map(|row| row.get(0)).collect()
}

#[tokio::test]
async fn a_fresh_database_gets_the_whole_schema() {
    let fresh = Fresh::new().await;
    let database = Database::connect(&fresh.url).await.unwrap();
    assert_eq!(
        database.schema_version().await.unwrap(),
        MIGRATIONS.len() as i32
    );
    let tables = query_strings(
        &fresh.url,
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' ORDER BY 1",
    )
    .await;
    for table in [
        "artifacts",
        "event_clock",
        "events",
        "idempotency_keys",
        "job_counts",
        "job_logs",
        "jobs",
        "queues",
        "runway_schema",
        "tokens",
        "triggers",
        "web_sessions",
    ] {
        assert!(
            tables.iter().any(|name| name == table),
            "{table} in {tables:?}"
        );
    }
}

#[tokio::test]
async fn two_servers_starting_at_once_migrate_once() {
    let fresh = Fresh::new().await;
    let (one, two) = tokio::join!(Database::connect(&fresh.url), Database::connect(&fresh.url));
    one.unwrap();
    two.unwrap();
    let versions = query_strings(
        &fresh.url,
        "SELECT version::text FROM runway_schema ORDER BY version",
    )
    .await;
    let expected: Vec<String> = (1..=MIGRATIONS.len()).map(|v| v.to_string()).collect();
    assert_eq!(versions, expected);
    // A later start finds nothing to do.
    let again = Database::connect(&fresh.url).await.unwrap();
    assert_eq!(
        again.schema_version().await.unwrap(),
        MIGRATIONS.len() as i32
    );
}

#[tokio::test]
async fn a_database_a_newer_runway_migrated_is_refused() {
    let fresh = Fresh::new().await;
    Database::connect(&fresh.url).await.unwrap();
    execute(
        &fresh.url,
        "INSERT INTO runway_schema (version) VALUES (999)",
    )
    .await;
    let Err(ConnectError::Migrate(MigrateError::Newer { found, known })) =
        Database::connect(&fresh.url).await
    else {
        panic!("a newer schema must be refused");
    };
    assert_eq!((found, known), (999, MIGRATIONS.len() as i32));
}

#[tokio::test]
async fn finished_jobs_are_counted_as_they_finish_and_leave() {
    let fresh = Fresh::new().await;
    Database::connect(&fresh.url).await.unwrap();
    execute(
        &fresh.url,
        "INSERT INTO jobs (job_type, queue, status, input, max_attempts, created_at, run_at)
             VALUES ('a', 'q', 'queued', '{}', 1, 0, 0), ('a', 'q', 'succeeded', '{}', 1, 0, 0);
         UPDATE jobs SET status = 'running' WHERE status = 'queued';
         UPDATE jobs SET status = 'failed' WHERE status = 'running';",
    )
    .await;
    let counts = query_strings(
        &fresh.url,
        "SELECT status || ':' || count FROM job_counts ORDER BY status",
    )
    .await;
    assert_eq!(counts, ["failed:1", "succeeded:1"]);
    execute(&fresh.url, "DELETE FROM jobs WHERE status = 'failed'").await;
    let counts = query_strings(
        &fresh.url,
        "SELECT status || ':' || count FROM job_counts ORDER BY status",
    )
    .await;
    assert_eq!(counts, ["failed:0", "succeeded:1"]);
}

#[tokio::test]
async fn a_server_nobody_listens_on_is_named_in_the_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("postgres://runway:hidden@127.0.0.1:{port}/runway");
    let Err(error) = Database::connect(&url).await else {
        panic!("nothing listens there");
    };
    let message = error.to_string();
    assert!(
        matches!(error, ConnectError::Unreachable { .. }),
        "{message}"
    );
    assert!(message.contains(&format!("port {port}")), "{message}");
    assert!(
        !message.contains("hidden"),
        "no password in messages: {message}"
    );
}

#[tokio::test]
async fn a_url_that_is_not_one_says_how_to_write_it() {
    let Err(error) = Database::connect("postgres://runway@host:notaport/db").await else {
        panic!("not a URL");
    };
    assert!(matches!(error, ConnectError::BadUrl { .. }), "{error}");
    assert!(error.to_string().contains("postgres://USER"), "{error}");
}
