//! `ls`, `show`, `cancel`, `retry`, `types`: one request each, printed as a table or JSON.

use comfy_table::Cell;
use runway_api::JobResponse;
use runway_client::ListJobs;

use crate::cli::{Connection, Format, IdsArgs, LsArgs, OutputArgs, ShowArgs};
use crate::exit::{self, CliError};
use crate::output;

pub async fn ls(connection: &Connection, args: LsArgs) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    // The server takes statuses joined by commas alone; a person may type `failed, cancelled`.
    let status = args.status.as_deref().map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|status| !status.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    });
    let now = chrono::Utc::now();
    let instant = |flag: &str, text: &Option<String>| {
        text.as_deref()
            .map(|text| time_flag(flag, text, now))
            .transpose()
    };
    let filters = ListJobs {
        status: status.filter(|status| !status.is_empty()),
        job_type: args.job_type.clone(),
        queue: args.queue.clone(),
        q: args.search.clone(),
        parent: args.parent.clone(),
        roots: args.roots.then_some(true),
        retry_of: args.retry_of.clone(),
        created_after: instant("--created-after", &args.created_after)?,
        created_before: instant("--created-before", &args.created_before)?,
        finished_after: instant("--finished-after", &args.finished_after)?,
        finished_before: instant("--finished-before", &args.finished_before)?,
        sort: Some(args.sort.wire()),
        order: Some(if args.asc {
            runway_api::SortOrder::Asc
        } else {
            runway_api::SortOrder::Desc
        }),
        cursor: None,
        limit: Some(args.limit),
    };
    if args.watch {
        return watch(&client, &filters).await;
    }
    let page = client.list_jobs(&filters).await?;
    match args.output.format {
        Format::Json => output::print_json(&page.jobs)?,
        Format::Table => print_jobs(&page.jobs)?,
    }
    Ok(exit::OK)
}

/// A time flag's instant as RFC 3339: given so, or as how long ago (`90m`, `2h`, `7d`).
fn time_flag(
    flag: &str,
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, CliError> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.to_rfc3339());
    }
    let ago = humantime::parse_duration(text)
        .ok()
        .and_then(|ago| chrono::Duration::from_std(ago).ok())
        .and_then(|ago| now.checked_sub_signed(ago))
        .ok_or_else(|| {
            CliError::new(
                exit::USAGE,
                format!(
                    "{flag} `{text}` is neither an RFC 3339 instant (2026-11-29T08:00:00Z) nor how \
                 long ago (90m, 2h, 7d)"
                ),
            )
        })?;
    Ok(ago.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

pub fn print_jobs(jobs: &[JobResponse]) -> std::io::Result<()> {
    let mut table = output::table(&[
        "ID", "TYPE", "STATUS", "QUEUE", "ATTEMPT", "PROGRESS", "CREATED", "DURATION", "INPUT",
    ]);
    for job in jobs {
        table.add_row(vec![
            Cell::new(&job.id),
            Cell::new(output::sanitize(&job.job_type)),
            Cell::new(&job.status),
            Cell::new(&job.queue),
            Cell::new(format!("{}/{}", job.attempt, job.max_attempts)),
            Cell::new(output::progress(job)),
            Cell::new(output::when(job.created_at)),
            Cell::new(output::duration(job)),
            Cell::new(output::summary(job, 48)),
        ]);
    }
    output::print_table(&table)
}

pub async fn show(connection: &Connection, args: ShowArgs) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    if args.tree {
        return show_tree(&client, &args).await;
    }
    let job = client.job(&args.id).await?;
    match args.output.format {
        Format::Json => output::print_json(&job)?,
        Format::Table => print_job(&job)?,
    }
    Ok(exit::OK)
}

/// Most descendants `show --tree` reads.
const MAX_TREE_NODES: usize = 10_000;

/// A job with its descendants, read page by page.
#[derive(serde::Serialize)]
struct TreeNode {
    #[serde(flatten)]
    job: JobResponse,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    descendants: Vec<TreeNode>,
}

async fn show_tree(client: &runway_client::Client, args: &ShowArgs) -> Result<u8, CliError> {
    let mut budget = MAX_TREE_NODES;
    let job = client.job(&args.id).await?;
    let root = read_tree(client, job, &mut budget).await?;
    match args.output.format {
        Format::Json => output::print_json(&root)?,
        Format::Table => {
            print_job(&root.job)?;
            output::print_line("")?;
            let mut lines = Vec::new();
            tree_lines(&root, "", &mut lines);
            for line in lines {
                output::print_line(&line)?;
            }
            if budget == 0 {
                output::print_line(&format!(
                    "… the tree has more than {MAX_TREE_NODES} jobs; `runway ls --parent ID` pages through any level"
                ))?;
            }
        }
    }
    Ok(exit::OK)
}

/// `job` with its descendants, read depth first, page by page: at most `budget` of them.
fn read_tree<'a>(
    client: &'a runway_client::Client,
    job: JobResponse,
    budget: &'a mut usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<TreeNode, CliError>> + 'a>> {
    Box::pin(async move {
        let mut children = Vec::new();
        let mut cursor: Option<String> = None;
        while job.children.total > 0 && *budget > 0 {
            let limit = (*budget).min(1000) as u32;
            let page = client.tree(&job.id, cursor.as_deref(), limit).await?;
            *budget -= page.children.len();
            children.extend(page.children);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut descendants = Vec::with_capacity(children.len());
        for child in children {
            descendants.push(read_tree(client, child, budget).await?);
        }
        Ok(TreeNode { job, descendants })
    })
}

/// The tree's lines below the root: one per job, drawn with box characters.
fn tree_lines(node: &TreeNode, prefix: &str, lines: &mut Vec<String>) {
    let count = node.descendants.len();
    for (index, child) in node.descendants.iter().enumerate() {
        let last = index + 1 == count;
        let job = &child.job;
        let key = job
            .key
            .as_deref()
            .map(|key| format!(" key={}", output::sanitize(key)))
            .unwrap_or_default();
        lines.push(format!(
            "{prefix}{} {} {} {}{key} {}",
            if last { "└─" } else { "├─" },
            job.id,
            output::sanitize(&job.job_type),
            job.status,
            output::duration(job),
        ));
        let deeper = format!("{prefix}{}", if last { "   " } else { "│  " });
        tree_lines(child, &deeper, lines);
    }
}

fn print_job(job: &JobResponse) -> std::io::Result<()> {
    let mut rows: Vec<(&str, String)> = vec![
        ("id", job.id.clone()),
        ("type", output::sanitize(&job.job_type)),
        ("status", job.status.clone()),
        ("queue", job.queue.clone()),
        ("priority", job.priority.to_string()),
        (
            "attempt",
            if job.phase == runway_api::JobPhase::Join {
                format!("{} of {} (join)", job.phase_attempt, job.max_attempts)
            } else {
                format!("{} of {}", job.attempt, job.max_attempts)
            },
        ),
        ("created", output::when(job.created_at)),
        ("run at", output::when(job.run_at)),
    ];
    if let Some(started) = job.started_at {
        rows.push(("started", output::when(started)));
    }
    if let Some(finished) = job.finished_at {
        rows.push(("finished", output::when(finished)));
        rows.push(("duration", output::duration(job)));
    }
    if let Some(progress) = &job.progress {
        let message = progress
            .message
            .as_deref()
            .map(output::sanitize)
            .unwrap_or_default();
        rows.push((
            "progress",
            format!("{} {message}", output::progress(job))
                .trim_end()
                .to_string(),
        ));
    }
    if let Some(retry_of) = &job.retry_of {
        rows.push(("retry of", retry_of.clone()));
    }
    if let Some(parent) = &job.parent {
        rows.push(("parent", parent.clone()));
    }
    if let Some(key) = &job.key {
        rows.push(("key", output::sanitize(key)));
    }
    if job.phase == runway_api::JobPhase::Join {
        rows.push(("phase", "join".into()));
    }
    let children = job.children;
    if children.total > 0 {
        rows.push((
            "children",
            format!(
                "{} ({} unfinished, {} succeeded, {} failed, {} cancelled)",
                children.total,
                children.unfinished,
                children.succeeded,
                children.failed,
                children.cancelled
            ),
        ));
    }
    if job.cancel_requested && !matches!(job.status.as_str(), "cancelled") {
        rows.push(("cancel", "requested".into()));
    }
    if let Some(error) = &job.error {
        rows.push(("error", output::sanitize(error)));
    }
    rows.push(("input", output::sanitize(&pretty(&job.input))));
    if let Some(result) = &job.output {
        rows.push(("output", output::sanitize(&pretty(result))));
    }
    let log = if job.log_lost > 0 {
        format!(
            "{} bytes ({} bytes lost: the server's disk was full)",
            job.log_size, job.log_lost
        )
    } else {
        format!("{} bytes", job.log_size)
    };
    rows.push(("log", log));
    if job.runs > job.attempt {
        rows.push((
            "runs",
            format!("{} (a hand-back or a crash ran it again)", job.runs),
        ));
    }
    output::print_fields(&rows)
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

pub async fn cancel(connection: &Connection, args: IdsArgs) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    let mut answers = Vec::new();
    let mut worst = exit::OK;
    for id in &args.ids {
        match client.cancel(id).await {
            Ok(answer) => {
                if args.output.format == Format::Table {
                    let what = if answer.stopping {
                        "stopping"
                    } else {
                        "cancelled"
                    };
                    output::print_line(&format!("{id} {what}"))?;
                }
                answers.push(answer);
            }
            Err(error) => {
                let error = CliError::from(error);
                eprintln!("runway: job {id}: {}", error.message);
                worst = worst.max(error.code);
            }
        }
    }
    if args.output.format == Format::Json {
        output::print_json(&answers)?;
    }
    Ok(worst)
}

pub async fn rm(connection: &Connection, args: IdsArgs) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    let mut answers = Vec::new();
    let mut worst = exit::OK;
    for id in &args.ids {
        match client.delete(id).await {
            Ok(answer) => {
                if args.output.format == Format::Table {
                    output::print_line(&format!("{id} deleted ({} jobs)", answer.deleted))?;
                }
                answers.push(serde_json::json!({"id": id, "deleted": answer.deleted}));
            }
            Err(error) => {
                let error = CliError::from(error);
                eprintln!("runway: job {id}: {}", error.message);
                worst = worst.max(error.code);
            }
        }
    }
    if args.output.format == Format::Json {
        output::print_json(&answers)?;
    }
    Ok(worst)
}

pub async fn retry(connection: &Connection, args: IdsArgs) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    let mut jobs = Vec::new();
    let mut worst = exit::OK;
    for id in &args.ids {
        match client.retry(id).await {
            Ok(job) => {
                if args.output.format == Format::Table {
                    output::print_line(&job.id)?;
                }
                jobs.push(job);
            }
            Err(error) => {
                let error = CliError::from(error);
                eprintln!("runway: job {id}: {}", error.message);
                worst = worst.max(error.code);
            }
        }
    }
    if args.output.format == Format::Json {
        output::print_json(&jobs)?;
    }
    Ok(worst)
}

pub async fn types(connection: &Connection, args: OutputArgs) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    let types = client.types().await?.types;
    match args.format {
        Format::Json => output::print_json(&types)?,
        Format::Table => {
            let mut table =
                output::table(&["TYPE", "KIND", "QUEUE", "ATTEMPTS", "TIMEOUT", "RUNS"]);
            for job_type in &types {
                table.add_row(vec![
                    Cell::new(&job_type.name),
                    Cell::new(&job_type.kind),
                    Cell::new(&job_type.queue),
                    Cell::new(job_type.max_attempts),
                    Cell::new(
                        job_type
                            .timeout_secs
                            .map(|secs| format!("{secs}s"))
                            .unwrap_or_default(),
                    ),
                    Cell::new(
                        job_type
                            .command
                            .as_ref()
                            .map(shell_words::join)
                            .unwrap_or_default(),
                    ),
                ]);
            }
            output::print_table(&table)?;
        }
    }
    Ok(exit::OK)
}

/// `ls --watch`: redraws the table whenever a job of interest changes, at most ten times a
/// second, until interrupted.
async fn watch(client: &runway_client::Client, filters: &ListJobs) -> Result<u8, CliError> {
    use std::io::Write;
    use std::time::Duration;
    // Not filtered by status: a job leaving a watched status must redraw the table too.
    let mut feed = client
        .updates(&runway_client::UpdatesQuery {
            job_type: filters.job_type.clone(),
            queue: filters.queue.clone(),
            q: filters.q.clone(),
            ..Default::default()
        })
        .await?;
    loop {
        let page = client.list_jobs(filters).await?;
        {
            let mut stdout = std::io::stdout().lock();
            write!(stdout, "\x1b[H\x1b[2J")?;
            stdout.flush()?;
        }
        print_jobs(&page.jobs)?;
        output::print_line(&format!(
            "\nwatching {} job(s) as they change; Ctrl-C to stop",
            page.jobs.len()
        ))?;
        match feed.next().await {
            None => {
                return Err(CliError::new(
                    exit::UNREACHABLE,
                    "the server closed the live feed",
                ));
            }
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(_)) => {}
        }
        // Fold a burst of changes into one redraw.
        let settle = tokio::time::Instant::now() + Duration::from_millis(100);
        while let Ok(Some(message)) = tokio::time::timeout_at(settle, feed.next()).await {
            message?;
        }
    }
}
