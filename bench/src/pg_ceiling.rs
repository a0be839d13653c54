//! (l) PostgreSQL's own ceiling on this machine (`runway-bench --database URL pg-ceiling`): what
//! one connection gets through, with nothing else running, for the statements runway's store
//! makes per job on runway's schema (migrated by runway), and for the statements of a minimal
//! queue: a peer-like table that keeps no history. runway's figures on PostgreSQL divided by the
//! first say how close the engine runs to its storage; the second says what the same machine
//! gives a design that records nothing but each job's state.
//!
//! runway's schema, per job: the submit inserts the row, its searched text and its `submitted`
//! event in batches of 1,000 (one `INSERT … SELECT FROM unnest`, ids drawn first, as
//! `insert_plain`), committed synchronously; with the benchmark's usual input (`{"n": N}`) and
//! with a transcode's (paths and a preset, about 250 bytes). The run is the outcome batch's transaction (`job_finish_many_and_claim`,
//! `synchronous_commit = off`): lock the batch that ran (`FOR UPDATE`, every column read), write
//! it succeeded, lock the next due jobs (`FOR UPDATE SKIP LOCKED`), count the queue's room under
//! its lock, write them running, add the finished jobs to `job_counts`, stamp both batches'
//! events from `event_clock`, commit; in batches of 8 and of 512 jobs.
//!
//! The minimal queue: a table like a peer's (id, kind, queue, state, priority, times, attempt,
//! args as `jsonb`; its fetch index, a kind index, a finalized index, a GIN index on args). A
//! batch is inserted in one statement; a claim is one `UPDATE … WHERE id IN (SELECT … FOR UPDATE
//! SKIP LOCKED LIMIT n)`, a completion one `UPDATE … FROM unnest(ids)`; no events, no counts.
//! Its run is also measured with claims and completions on two connections at once, as a peer
//! completes jobs apart from its fetches.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio_postgres::{Client, NoTls};

use crate::print;
use crate::servers::BenchDatabase;

const JOBS: i64 = 20_000;

pub(crate) async fn run() -> Result<()> {
    for (inputs, input) in [("short", short_input as Input), ("paths", paths_input)] {
        // A database of its own for each: what one left behind must not slow the next.
        let database = fresh_database().await?;
        let client = connect(&database.url).await?;
        let submit = runway_submit(&client, input).await?;
        let mut runs = Vec::new();
        for batch in [8, 512] {
            runs.push(runway_run(&client, batch).await?);
        }
        print(json!({
            "figure": "l_postgres_ceiling_runway_schema", "jobs": JOBS, "inputs": inputs,
            "input_bytes": input(0).len(),
            "submit_per_sec_batches_of_1000": submit,
            "run_per_sec_batches_of_8": runs[0],
            "run_per_sec_batches_of_512": runs[1],
        }));
    }

    let database = fresh_database().await?;
    let client = connect(&database.url).await?;
    minimal_schema(&client).await?;
    let submit = minimal_submit(&client).await?;
    let mut runs = Vec::new();
    for batch in [8, 512] {
        runs.push(minimal_run(&client, batch).await?);
    }
    minimal_submit(&client).await?;
    let overlapped = minimal_run_overlapped(&client, &database.url, 512).await?;
    print(json!({
        "figure": "l_postgres_ceiling_minimal_queue", "jobs": JOBS,
        "submit_per_sec_batches_of_1000": submit,
        "run_per_sec_batches_of_8": runs[0],
        "run_per_sec_batches_of_512": runs[1],
        "run_per_sec_batches_of_512_claims_and_completions_overlapped": overlapped,
    }));
    Ok(())
}

/// A database of its own with runway's schema, migrated as a server migrates it.
async fn fresh_database() -> Result<BenchDatabase> {
    let Some(database) = BenchDatabase::from_env().await? else {
        bail!(
            "runway-bench pg-ceiling needs --database postgres://… (a server where it may create databases)"
        );
    };
    runway_postgres::Database::connect(&database.url)
        .await
        .context("migrating the benchmark's database")?;
    Ok(database)
}

async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The store's stamp: seqs from `event_clock`, the events, the NOTIFY.
const STAMP: &str = "WITH clock AS (UPDATE event_clock SET seq = seq + $1 RETURNING seq),
     stored AS (
         INSERT INTO events (seq, job_id, at, kind, status, data)
         SELECT (SELECT seq FROM clock) - $1 + number, job_id, $2, kind, status, '{}'
         FROM unnest($3::bigint[], $4::text[], $5::text[])
              WITH ORDINALITY AS event (job_id, kind, status, number))
     SELECT seq, pg_notify('runway_changes', seq::text) FROM clock";

async fn stamp(client: &Client, events: &[(i64, &str, &str)]) -> Result<()> {
    let jobs: Vec<i64> = events.iter().map(|event| event.0).collect();
    let kinds: Vec<&str> = events.iter().map(|event| event.1).collect();
    let statuses: Vec<&str> = events.iter().map(|event| event.2).collect();
    client
        .query_one(
            STAMP,
            &[&(events.len() as i64), &now(), &jobs, &kinds, &statuses],
        )
        .await?;
    Ok(())
}

/// A job's input, by its number.
type Input = fn(i64) -> String;

/// The benchmark's usual input: a number.
fn short_input(n: i64) -> String {
    json!({"n": n}).to_string()
}

/// A transcode's input (`transcode_input`), about 250 bytes.
fn paths_input(n: i64) -> String {
    crate::transcode_input(n as u64).to_string()
}

async fn runway_submit(client: &Client, input: Input) -> Result<f64> {
    let started = Instant::now();
    for batch in 0..JOBS / 1000 {
        client
            .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await?;
        let ids: Vec<i64> = client
            .query(
                "SELECT nextval(pg_get_serial_sequence('jobs', 'id')) FROM generate_series(1, $1)",
                &[&1000i32],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let inputs: Vec<String> = (0..1000).map(|n| input(batch * 1000 + n)).collect();
        client
            .execute(
                "WITH inserted AS (
                     INSERT INTO jobs (id, job_type, queue, status, priority, input,
                         max_attempts, created_at, run_at, depth, phase, tree_join,
                         on_child_failure)
                     OVERRIDING SYSTEM VALUE
                     SELECT id, 'noop', 'default', 'queued', 0, input, 1, $3, $3, 0, 'run',
                         false, 'fail_fast'
                     FROM unnest($1::bigint[], $2::text[]) AS new (id, input)
                     RETURNING id, job_type, input)
                 INSERT INTO job_text (id, text)
                 SELECT id, lower((job_type || chr(10) || input) COLLATE \"C\") FROM inserted",
                &[&ids, &inputs, &now()],
            )
            .await?;
        let events: Vec<(i64, &str, &str)> =
            ids.iter().map(|id| (*id, "submitted", "queued")).collect();
        stamp(client, &events).await?;
        client.batch_execute("COMMIT").await?;
    }
    Ok(JOBS as f64 / started.elapsed().as_secs_f64())
}

/// Runs half of the jobs the submit left queued, `batch` at a time.
async fn runway_run(client: &Client, batch: i64) -> Result<f64> {
    let jobs = JOBS / 2;
    let types = vec!["noop".to_string()];
    let started = Instant::now();
    let (mut ended, mut claimed) = (0, 0);
    let mut running: Vec<i64> = Vec::new();
    while ended < jobs {
        client
            .batch_execute(
                "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit = off",
            )
            .await?;
        let mut events: Vec<(i64, &str, &str)> = Vec::new();
        if !running.is_empty() {
            client
                .query(
                    "SELECT * FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                    &[&running],
                )
                .await?;
            client
                .execute(
                    "UPDATE jobs SET status = 'succeeded', finished_at = $2, lease_until = NULL,
                         worker = NULL, output = 'null'
                     FROM unnest($1::bigint[]) AS u (id)
                     WHERE jobs.id = u.id AND jobs.status = 'running' AND jobs.attempt = 1
                         AND jobs.worker = 'w'",
                    &[&running, &now()],
                )
                .await?;
            client
                .execute(
                    "INSERT INTO job_counts (queue, job_type, status, root, slot, count)
                     VALUES ('default', 'noop', 'succeeded', true,
                         (txid_current() % 64)::smallint, $1)
                     ON CONFLICT (queue, job_type, status, root, slot)
                     DO UPDATE SET count = job_counts.count + EXCLUDED.count",
                    &[&(running.len() as i64)],
                )
                .await?;
            events.extend(running.iter().map(|id| (*id, "succeeded", "succeeded")));
            ended += running.len() as i64;
        }
        let wanted = batch.min(jobs - claimed);
        let due: Vec<i64> = if wanted > 0 {
            client
                .query(
                    "SELECT * FROM jobs
                     WHERE queue = $1 AND status IN ('queued', 'scheduled') AND run_at <= $2
                       AND job_type = ANY($4)
                       AND NOT EXISTS (SELECT 1 FROM queues WHERE name = $1 AND paused)
                     ORDER BY priority DESC, id LIMIT $3 FOR UPDATE SKIP LOCKED",
                    &[&"default", &now(), &wanted, &types],
                )
                .await?
                .iter()
                .map(|row| row.get("id"))
                .collect()
        } else {
            Vec::new()
        };
        if !due.is_empty() {
            client
                .query_one(
                    "SELECT runway_queue_room($1, $2)",
                    &[&"default", &1_000_000i32],
                )
                .await?;
            client
                .execute(
                    "UPDATE jobs SET status = 'running', attempt = 1, runs = 1, started_at = $2,
                         lease_until = $2, worker = 'w'
                     FROM unnest($1::bigint[]) AS u (id)
                     WHERE jobs.id = u.id AND jobs.status = 'queued' AND jobs.attempt = 0
                         AND jobs.worker IS NULL",
                    &[&due, &now()],
                )
                .await?;
            events.extend(due.iter().map(|id| (*id, "started", "running")));
            claimed += due.len() as i64;
        }
        stamp(client, &events).await?;
        client.batch_execute("COMMIT").await?;
        running = due;
    }
    Ok(jobs as f64 / started.elapsed().as_secs_f64())
}

/// The minimal queue's claim of up to `$1` jobs.
const MINIMAL_CLAIM: &str = "UPDATE minimal_jobs SET state = 'running', attempt = attempt + 1,
         attempted_at = now(), attempted_by = array_append(attempted_by, 'w')
     WHERE id IN (SELECT id FROM minimal_jobs
         WHERE state = 'available' AND queue = 'default' AND scheduled_at <= now()
         ORDER BY priority, scheduled_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
     RETURNING id";

/// The minimal queue's completion of the jobs `$1` names.
const MINIMAL_COMPLETE: &str = "UPDATE minimal_jobs SET state = 'completed', finalized_at = now()
     FROM unnest($1::bigint[]) AS u (id) WHERE minimal_jobs.id = u.id";

async fn minimal_schema(client: &Client) -> Result<()> {
    client
        .batch_execute(
            "CREATE TABLE minimal_jobs (
                 id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                 kind         text        NOT NULL,
                 queue        text        NOT NULL,
                 state        text        NOT NULL,
                 priority     smallint    NOT NULL DEFAULT 1,
                 args         jsonb       NOT NULL,
                 attempt      smallint    NOT NULL DEFAULT 0,
                 max_attempts smallint    NOT NULL,
                 attempted_at timestamptz,
                 attempted_by text[],
                 created_at   timestamptz NOT NULL DEFAULT now(),
                 scheduled_at timestamptz NOT NULL DEFAULT now(),
                 finalized_at timestamptz
             );
             CREATE INDEX minimal_jobs_fetch ON minimal_jobs (state, queue, priority, scheduled_at, id);
             CREATE INDEX minimal_jobs_kind ON minimal_jobs (kind);
             CREATE INDEX minimal_jobs_finalized ON minimal_jobs (state, finalized_at)
                 WHERE finalized_at IS NOT NULL;
             CREATE INDEX minimal_jobs_args ON minimal_jobs USING gin (args);",
        )
        .await?;
    Ok(())
}

async fn minimal_submit(client: &Client) -> Result<f64> {
    let started = Instant::now();
    for batch in 0..JOBS / 1000 {
        let args: Vec<String> = (0..1000)
            .map(|n| json!({"n": batch * 1000 + n}).to_string())
            .collect();
        client
            .execute(
                "INSERT INTO minimal_jobs (kind, queue, state, args, max_attempts)
                 SELECT 'noop', 'default', 'available', args::jsonb, 1
                 FROM unnest($1::text[]) AS new (args)",
                &[&args],
            )
            .await?;
    }
    Ok(JOBS as f64 / started.elapsed().as_secs_f64())
}

/// Claims up to `limit` of the minimal queue's jobs, which must have some left.
async fn minimal_claim(client: &Client, limit: i64) -> Result<Vec<i64>> {
    let claimed: Vec<i64> = client
        .query(MINIMAL_CLAIM, &[&limit])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if claimed.is_empty() {
        bail!("the minimal queue ran out of jobs");
    }
    Ok(claimed)
}

async fn minimal_run(client: &Client, batch: i64) -> Result<f64> {
    let jobs = JOBS / 2;
    client.batch_execute("SET synchronous_commit = off").await?;
    let started = Instant::now();
    let mut ended = 0;
    while ended < jobs {
        let claimed = minimal_claim(client, batch.min(jobs - ended)).await?;
        client.execute(MINIMAL_COMPLETE, &[&claimed]).await?;
        ended += claimed.len() as i64;
    }
    client.batch_execute("SET synchronous_commit = on").await?;
    Ok(jobs as f64 / started.elapsed().as_secs_f64())
}

/// The minimal queue's run with a claimer and a completer on connections of their own: each
/// claimed batch is completed by the other connection while the next is claimed.
async fn minimal_run_overlapped(claimer: &Client, url: &str, batch: i64) -> Result<f64> {
    let jobs = JOBS;
    let completer = connect(url).await?;
    for client in [claimer, &completer] {
        client.batch_execute("SET synchronous_commit = off").await?;
    }
    let (send, mut receive) = tokio::sync::mpsc::channel::<Vec<i64>>(4);
    let started = Instant::now();
    let completing = tokio::spawn(async move {
        let mut ended = 0;
        while let Some(claimed) = receive.recv().await {
            completer.execute(MINIMAL_COMPLETE, &[&claimed]).await?;
            ended += claimed.len() as i64;
        }
        anyhow::Ok(ended)
    });
    let mut claimed_total = 0;
    while claimed_total < jobs {
        let claimed = minimal_claim(claimer, batch.min(jobs - claimed_total)).await?;
        claimed_total += claimed.len() as i64;
        send.send(claimed).await?;
    }
    drop(send);
    let ended = completing.await??;
    claimer.batch_execute("SET synchronous_commit = on").await?;
    Ok(ended as f64 / started.elapsed().as_secs_f64())
}
