//! The PostgreSQL backend against a real server: `RUNWAY_TEST_DATABASE` names one where the
//! tests may create databases (`./scripts/test` starts a throwaway one). Each test works in a
//! database of its own, dropped at its end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use runway_core::bus::Bus;
use runway_core::store::{JobListParams, JobSearch};
use runway_core::{Clock, Store, SystemClock};
use runway_postgres::{ConnectError, Database, MIGRATIONS, MigrateError};
use tokio_postgres::NoTls;

/// An empty store on a database of its own, for the shared suite.
async fn open_store() -> (Arc<dyn Store>, Bus, Fresh) {
    let fresh = Fresh::new().await;
    let database = Database::connect(&fresh.url).await.unwrap();
    let bus = Bus::default();
    let store = database.store(bus.clone()).await.unwrap();
    (Arc::new(store), bus, fresh)
}

/// The shared behavioural suite, one test per scenario.
mod suite {
    runway_core::store_suite!(super::open_store);
}

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

/// A write of held jobs that wrote fewer rows than it held fails in the database, so the
/// COMMIT sent behind it in the same round trip rolls the whole transaction back.
#[tokio::test]
async fn a_commit_behind_a_short_held_write_keeps_nothing() {
    let fresh = Fresh::new().await;
    Database::connect(&fresh.url).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&fresh.url, NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    client
        .batch_execute("BEGIN; INSERT INTO queues (name) VALUES ('written before')")
        .await
        .unwrap();
    // Prepared first, as the store's statements are: a statement given as text is prepared
    // in a round trip of its own, and the COMMIT would overtake it.
    let check = client.prepare("SELECT runway_written(1, 2)").await.unwrap();
    let (checked, committed) = futures_util::future::join(
        client.query_one(&check, &[]),
        client.batch_execute("COMMIT"),
    )
    .await;
    let error = checked.unwrap_err();
    assert!(
        error
            .as_db_error()
            .is_some_and(|db| db.message().contains("1 of 2 jobs this write held locked")),
        "{error}"
    );
    committed.unwrap();
    let kept = client
        .query_one("SELECT count(*) FROM queues", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(kept, 0, "the transaction was rolled back");
    drop(client);
    let _ = driver.await;
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

/// A database migrated before the searched text moved apart (schema 6) keeps its jobs
/// searchable: the migration writes the text of every job there is.
#[tokio::test]
async fn an_older_database_gets_its_jobs_searchable() {
    let fresh = Fresh::new().await;
    let before_text_apart = 6;
    let mut older = String::from(
        "CREATE TABLE runway_schema (
             version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());",
    );
    for (index, migration) in MIGRATIONS[..before_text_apart].iter().enumerate() {
        older.push_str(migration);
        older.push_str(&format!(
            ";\nINSERT INTO runway_schema (version) VALUES ({});\n",
            index + 1
        ));
    }
    older.push_str(
        "INSERT INTO jobs (job_type, queue, status, input, max_attempts, created_at, run_at)
             VALUES ('render', 'q', 'succeeded', '{\"scene\": \"Harbor\"}', 1, 0, 0),
                 ('render', 'q', 'queued', '{\"scene\": \"Forest\"}', 1, 0, 0);",
    );
    execute(&fresh.url, &older).await;
    let database = Database::connect(&fresh.url).await.unwrap();
    let store = database.store(Bus::default()).await.unwrap();
    for (text, expected) in [
        ("harbor", vec!["Harbor"]),
        ("RENDER", vec!["Forest", "Harbor"]),
    ] {
        let found = store
            .job_list(JobListParams {
                search: JobSearch::new(text),
                limit: 10,
                ..JobListParams::default()
            })
            .await
            .unwrap();
        let scenes: Vec<&str> = found
            .iter()
            .map(|job| job.input["scene"].as_str().unwrap())
            .collect();
        assert_eq!(scenes, expected, "a search for `{text}`, newest first");
    }
}

/// A job's searched text is deleted with it, by the statement that deletes the job (a tree's
/// delete and a prune both delete jobs by statement).
#[tokio::test]
async fn a_deleted_jobs_searched_text_goes_with_it() {
    let fresh = Fresh::new().await;
    let database = Database::connect(&fresh.url).await.unwrap();
    let store = database.store(Bus::default()).await.unwrap();
    execute(
        &fresh.url,
        "INSERT INTO jobs (job_type, queue, status, input, max_attempts, created_at, run_at)
             VALUES ('a', 'q', 'failed', '{}', 1, 0, 0), ('b', 'q', 'failed', '{}', 1, 0, 0),
                 ('c', 'q', 'queued', '{}', 1, 0, 0);
         INSERT INTO job_text (id, text) SELECT id, job_type FROM jobs;
         DELETE FROM jobs WHERE status = 'failed';",
    )
    .await;
    let texts = query_strings(&fresh.url, "SELECT text FROM job_text ORDER BY id").await;
    assert_eq!(texts, ["c"]);
    let found = store
        .job_list(JobListParams {
            search: JobSearch::new("c"),
            limit: 10,
            ..JobListParams::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}

/// The store counts the jobs it finishes (the store suite checks that); a delete, which a prune
/// makes by the thousand in one statement, is uncounted by the database itself.
#[tokio::test]
async fn a_finished_job_deleted_by_any_statement_leaves_its_count() {
    let fresh = Fresh::new().await;
    Database::connect(&fresh.url).await.unwrap();
    execute(
        &fresh.url,
        "INSERT INTO jobs (job_type, queue, status, input, max_attempts, created_at, run_at)
             VALUES ('a', 'q', 'failed', '{}', 1, 0, 0), ('a', 'q', 'succeeded', '{}', 1, 0, 0),
                 ('a', 'q', 'queued', '{}', 1, 0, 0);
         INSERT INTO job_counts (queue, job_type, status, root, slot, count)
             VALUES ('q', 'a', 'failed', true, 3, 1), ('q', 'a', 'succeeded', true, 5, 1);",
    )
    .await;
    execute(
        &fresh.url,
        "DELETE FROM jobs WHERE status IN ('failed', 'queued')",
    )
    .await;
    let counts = query_strings(
        &fresh.url,
        "SELECT status || ':' || sum(count) FROM job_counts GROUP BY status ORDER BY status",
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

/// Two servers' stores on one database, each with its own bus.
async fn two_servers() -> (Fresh, [(Arc<dyn Store>, Bus); 2]) {
    let fresh = Fresh::new().await;
    let mut servers = Vec::new();
    for _ in 0..2 {
        let database = Database::connect(&fresh.url).await.unwrap();
        let bus = Bus::default();
        let store: Arc<dyn Store> = Arc::new(database.store(bus.clone()).await.unwrap());
        servers.push((store, bus));
    }
    let [a, b]: [(Arc<dyn Store>, Bus); 2] = servers.try_into().ok().unwrap();
    (fresh, [a, b])
}

fn job(queue: &str) -> runway_core::job::NewJob {
    runway_core::job::NewJob::new("a", queue, serde_json::json!({}), SystemClock.now())
}

/// Collects the job seqs a bus publishes until it has seen `last`.
async fn seqs_until(
    mut receiver: tokio::sync::broadcast::Receiver<runway_core::bus::Changes>,
    last: i64,
) -> Vec<i64> {
    let mut seqs = Vec::new();
    while seqs.last().is_none_or(|seen| *seen < last) {
        let changes = tokio::time::timeout(std::time::Duration::from_secs(10), receiver.recv())
            .await
            .expect("the bus publishes every change within seconds")
            .expect("the bus keeps up");
        for change in changes.iter() {
            if let runway_core::bus::Change::Job(change) = change {
                seqs.push(change.seq);
            }
        }
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_server_publishes_every_change_once_in_seq_order() {
    let (_fresh, [(a, a_bus), (b, b_bus)]) = two_servers().await;
    let (a_heard, b_heard) = (a_bus.subscribe(), b_bus.subscribe());
    let writer = |store: Arc<dyn Store>| {
        tokio::spawn(async move {
            for _ in 0..100 {
                store
                    .job_insert_many(vec![job("q"), job("q")], SystemClock.now())
                    .await
                    .unwrap();
            }
        })
    };
    let writers = [
        writer(Arc::clone(&a)),
        writer(Arc::clone(&b)),
        writer(Arc::clone(&a)),
        writer(Arc::clone(&b)),
    ];
    for writer in writers {
        writer.await.unwrap();
    }
    let last = a.event_last_seq().await.unwrap();
    assert_eq!(last, 800, "one event per job");
    let expected: Vec<i64> = (1..=last).collect();
    assert_eq!(seqs_until(a_heard, last).await, expected);
    assert_eq!(seqs_until(b_heard, last).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_claiming_at_once_never_take_the_same_job() {
    use runway_core::store::JobClaimParams;
    let (_fresh, [(a, _), (b, _)]) = two_servers().await;
    let jobs: Vec<_> = (0..300).map(|_| job("q")).collect();
    a.job_insert_many(jobs, SystemClock.now()).await.unwrap();
    let claimer = |store: Arc<dyn Store>, worker: &'static str| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let now = SystemClock.now();
                let claimed = store
                    .job_claim(JobClaimParams {
                        queue: "q".into(),
                        job_types: vec!["a".into()],
                        limit: 7,
                        queue_limit: 1000,
                        worker: worker.into(),
                        now,
                        lease_until: now + chrono::Duration::seconds(60),
                        unanswered: Vec::new(),
                    })
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|job| job.id));
            }
        })
    };
    let (from_a, from_b) = tokio::join!(claimer(Arc::clone(&a), "a"), claimer(Arc::clone(&b), "b"));
    let mut all: Vec<_> = from_a.unwrap().into_iter().chain(from_b.unwrap()).collect();
    let claimed = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), claimed, "a job was claimed twice");
    assert_eq!(claimed, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn children_ending_on_two_servers_at_once_are_all_counted_on_their_parent() {
    use runway_core::job::JobStatus;
    use runway_core::store::{AttemptRef, JobClaimParams, JobFinishParams, Outcome};
    let (_fresh, [(a, _), (b, _)]) = two_servers().await;
    let claim = |queue: &str, worker: &str, limit: u32| {
        let now = SystemClock.now();
        JobClaimParams {
            queue: queue.into(),
            job_types: vec!["a".into()],
            limit,
            queue_limit: 1000,
            worker: worker.into(),
            now,
            lease_until: now + chrono::Duration::seconds(60),
            unanswered: Vec::new(),
        }
    };
    let attempt = |job: &runway_core::Job| AttemptRef {
        id: job.id,
        attempt: job.attempt,
        worker: job.worker.clone().unwrap(),
    };
    let succeeded = |job: &runway_core::Job| JobFinishParams {
        attempt: attempt(job),
        outcome: Outcome::Succeeded { output: None },
        now: SystemClock.now(),
    };
    let mut parent = job("p");
    parent.tree.join = true;
    a.job_insert_many(vec![parent], SystemClock.now())
        .await
        .unwrap();
    let parent = a.job_claim(claim("p", "a", 1)).await.unwrap().remove(0);
    // Children of four queues, ended at once on two servers: only the parent's row is theirs
    // to share.
    let queues = ["q", "r", "s", "t"];
    let children: Vec<_> = (0..40).map(|n| job(queues[n % 4])).collect();
    a.job_spawn(attempt(&parent), children, 100, SystemClock.now())
        .await
        .unwrap();
    let parent = a.job_get(parent.id).await.unwrap().unwrap();
    let waiting = a.job_finish(succeeded(&parent)).await.unwrap().unwrap();
    assert_eq!(waiting.status, JobStatus::Waiting);
    let mut ends = Vec::new();
    for (store, worker, queue) in [
        (&a, "a", "q"),
        (&b, "b", "r"),
        (&a, "a", "s"),
        (&b, "b", "t"),
    ] {
        for child in store.job_claim(claim(queue, worker, 10)).await.unwrap() {
            let store = Arc::clone(store);
            let finish = succeeded(&child);
            ends.push(tokio::spawn(async move { store.job_finish(finish).await }));
        }
    }
    assert_eq!(ends.len(), 40);
    for end in ends {
        assert!(
            end.await.unwrap().unwrap().is_some(),
            "each child ends once"
        );
    }
    let joined = b.job_get(parent.id).await.unwrap().unwrap();
    assert_eq!(joined.children.succeeded, 40);
    assert_eq!(joined.children.unfinished, 0);
    assert_eq!(
        joined.status,
        JobStatus::Queued,
        "the join is queued once every child ended"
    );
}

#[tokio::test]
async fn seqs_deleted_before_a_server_read_them_do_not_hold_back_the_next() {
    let (store, bus, fresh) = open_store().await;
    let heard = bus.subscribe();
    // Another server's changes, committed and then deleted with their tree before this server
    // read them: their seqs were handed out and will never be found.
    execute(&fresh.url, "UPDATE event_clock SET seq = seq + 5").await;
    store
        .job_insert_many(vec![job("q")], SystemClock.now())
        .await
        .unwrap();
    assert_eq!(seqs_until(heard, 6).await, [6]);
}
