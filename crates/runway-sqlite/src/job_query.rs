//! The SQL of the jobs list and of its counts, written for the filters a request has, so that
//! SQLite uses the index each filter has: a status filter the `(status, id)` index, a search the
//! trigram index `job_text`, a count of finished jobs the kept `job_counts`. One generic
//! statement with every
//! filter optional (`? IS NULL OR …`) hides them all from the planner, which then reads every
//! job: harmless at a thousand jobs, hundreds of milliseconds at a million.

use runway_core::JobStatus;
use runway_core::job_order::{JobOrder, JobSort};
use runway_core::store::{JobListParams, JobSearch, TreeFilter};
use runway_core::time_range::TimeRange;
use rusqlite::types::Value as SqlValue;
use serde_json::json;

use crate::jobs::JOB_COLUMNS;

/// A statement and its values, in the order of their `?N`.
pub(crate) struct Query {
    pub sql: String,
    pub values: Vec<SqlValue>,
}

/// A search text shorter than a trigram has no trigram to look up: such a search reads the
/// jobs in id order and stops at a page's end.
const TRIGRAM_CHARS: usize = 3;

/// A long search text is narrowed by this many of its trigrams; the exact test does the rest.
const MAX_TRIGRAMS: usize = 16;

/// The conditions of one statement, with the values they bind.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    values: Vec<SqlValue>,
}

impl Conditions {
    /// Binds `value` and returns its placeholder.
    fn bind(&mut self, value: SqlValue) -> String {
        self.values.push(value);
        format!("?{}", self.values.len())
    }

    fn add(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// The conditions joined, or a condition that always holds.
    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1".to_string()
        } else {
            self.clauses.join(" AND ")
        }
    }
}

/// Where a filter reads the tree and whether a job is a root: `jobs` itself, or the kept counts
/// of finished jobs (`root` stands for `parent_id IS NULL`).
#[derive(Clone, Copy, PartialEq)]
enum Table {
    Jobs,
    Counts,
}

/// The filters every form shares (tree, types, queues, and `statuses`), as conditions on
/// `table`.
fn filters(params: &JobListParams, statuses: &[JobStatus], table: Table) -> Conditions {
    filters_after(Vec::new(), params, statuses, table)
}

/// The same filters for a part of a statement whose earlier parts bound `values`: this part's
/// placeholders number on from theirs.
fn filters_after(
    values: Vec<SqlValue>,
    params: &JobListParams,
    statuses: &[JobStatus],
    table: Table,
) -> Conditions {
    let mut conditions = Conditions {
        clauses: Vec::new(),
        values,
    };
    match (params.tree, table) {
        (TreeFilter::All, _) => {}
        (TreeFilter::Roots, Table::Jobs) => conditions.add("parent_id IS NULL".into()),
        (TreeFilter::Roots, Table::Counts) => conditions.add("root = 1".into()),
        (TreeFilter::ChildrenOf(parent), _) => {
            let parent = conditions.bind(SqlValue::Integer(parent.0));
            conditions.add(format!("parent_id = {parent}"));
        }
    }
    if let Some(owner) = params.owner {
        // The kept counts know no owner: a count of one owner's jobs reads `jobs`.
        debug_assert!(
            table == Table::Jobs,
            "counts of an owner are read from jobs"
        );
        let owner = conditions.bind(SqlValue::Integer(owner.0));
        conditions.add(format!("owner_id = {owner}"));
    }
    if !statuses.is_empty() {
        // Statuses are core's names, never a client's text: written out, so that SQLite
        // sees which statuses it looks up.
        let statuses: Vec<String> = statuses
            .iter()
            .map(|status| format!("'{}'", status.as_str()))
            .collect();
        conditions.add(format!("status IN ({})", statuses.join(", ")));
    }
    if !params.job_types.is_empty() {
        let types = conditions.bind(SqlValue::Text(json!(params.job_types).to_string()));
        conditions.add(format!(
            "job_type IN (SELECT value FROM json_each({types}))"
        ));
    }
    if !params.queues.is_empty() {
        let queues = conditions.bind(SqlValue::Text(json!(params.queues).to_string()));
        conditions.add(format!("queue IN (SELECT value FROM json_each({queues}))"));
    }
    if let Some(retried) = params.retry_of {
        let retried = conditions.bind(SqlValue::Integer(retried.0));
        conditions.add(format!("retry_of = {retried}"));
    }
    if table == Table::Jobs {
        in_range(&mut conditions, "created_at", params.created);
        in_range(&mut conditions, "finished_at", params.finished);
    }
    conditions
}

/// `column` within `range` (the kept counts know no time: `JobListParams::counts_by_row`).
fn in_range(conditions: &mut Conditions, column: &str, range: TimeRange) {
    let (from, to) = range.micros();
    if let Some(from) = from {
        let from = conditions.bind(SqlValue::Integer(from));
        conditions.add(format!("{column} >= {from}"));
    }
    if let Some(to) = to {
        let to = conditions.bind(SqlValue::Integer(to));
        conditions.add(format!("{column} < {to}"));
    }
}

/// A job's sort key in SQL: the value of `JobOrder::key`, with its missing key bound.
fn sort_key(conditions: &mut Conditions, order: JobOrder) -> String {
    let value = match order.sort {
        JobSort::Created => return "id".into(),
        JobSort::Attempts => return "attempt".into(),
        JobSort::Started => "started_at",
        JobSort::Finished => "finished_at",
        JobSort::Duration => "finished_at - started_at",
    };
    let missing = conditions.bind(SqlValue::Integer(order.missing_key()));
    format!("coalesce({value}, {missing})")
}

/// The `ORDER BY` of a list in `order`, and the condition that keeps to the jobs after the
/// cursor, if any.
fn ordering(conditions: &mut Conditions, params: &JobListParams) -> String {
    let order = params.order;
    let key = sort_key(conditions, order);
    let (after, direction) = if order.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    if let Some(cursor) = params.before {
        let id = conditions.bind(SqlValue::Integer(cursor.id.0));
        if order.sort == JobSort::Created {
            conditions.add(format!("id {after} {id}"));
        } else {
            let at = conditions.bind(SqlValue::Integer(order.cursor_key(&cursor)));
            conditions.add(format!("({key}, id) {after} ({at}, {id})"));
        }
    }
    if order.sort == JobSort::Created {
        format!("id {direction}")
    } else {
        format!("{key} {direction}, id {direction}")
    }
}

/// The exact test of a search on one row: the SQL form of `JobSearch::matches` (SQLite's
/// `lower` folds ASCII only, like the needle).
fn exact(conditions: &mut Conditions, search: &JobSearch) -> String {
    if search.needle.contains('\0') {
        // No job's text holds a NUL character (its input is JSON, which escapes it).
        return "0".to_string();
    }
    let needle = conditions.bind(SqlValue::Text(search.needle.clone()));
    format!("(instr(lower(job_type), {needle}) > 0 OR instr(lower(input), {needle}) > 0)")
}

/// The trigram query that finds every job a search text can match (and a few more, which the
/// exact test drops), or `None` when the text is too short for one or holds a NUL character.
fn trigram_query(needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    // FTS5 reads a query as a C string: a NUL character would end it mid-phrase.
    if chars.len() < TRIGRAM_CHARS || needle.contains('\0') {
        return None;
    }
    let mut trigrams: Vec<String> = Vec::new();
    for window in chars.windows(TRIGRAM_CHARS) {
        let trigram: String = window.iter().collect();
        if !trigrams.contains(&trigram) {
            trigrams.push(trigram);
        }
    }
    // Spread over the text, so a long text is narrowed by all of its parts.
    let step = trigrams.len().div_ceil(MAX_TRIGRAMS);
    let terms: Vec<String> = trigrams
        .iter()
        .step_by(step)
        .map(|trigram| format!("\"{}\"", trigram.replace('"', "\"\"")))
        .collect();
    Some(terms.join(" AND "))
}

/// A page of the list in `params.order`, after `params.before`.
pub(crate) fn list(params: &JobListParams) -> Query {
    if params.order == JobOrder::default()
        && let Some(search) = &params.search
        && let Some(trigrams) = trigram_query(&search.needle)
    {
        return newest_by_text(params, search, &trigrams);
    }
    let mut conditions = filters(params, &params.statuses, Table::Jobs);
    let order_by = ordering(&mut conditions, params);
    if let Some(search) = &params.search {
        let id = conditions.bind(id_value(search));
        let exact = exact(&mut conditions, search);
        let narrowed = match trigram_query(&search.needle) {
            Some(trigrams) => {
                let trigrams = conditions.bind(SqlValue::Text(trigrams));
                format!(
                    " AND (id IS {id} OR id IN (SELECT rowid FROM job_text WHERE job_text MATCH {trigrams}))"
                )
            }
            None => String::new(),
        };
        conditions.add(format!("(id IS {id} OR {exact}){narrowed}"));
    }
    let limit = conditions.bind(SqlValue::Integer(i64::from(params.limit)));
    Query {
        sql: format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE {} ORDER BY {order_by} LIMIT {limit}",
            conditions.sql()
        ),
        values: conditions.values,
    }
}

/// A page of a search, newest first: the trigram index yields ids newest first, so a page stops
/// after `limit` matches.
fn newest_by_text(params: &JobListParams, search: &JobSearch, trigrams: &str) -> Query {
    let mut conditions = filters(params, &params.statuses, Table::Jobs);
    let before = conditions.bind(SqlValue::Integer(
        params.before.map_or(i64::MAX, |cursor| cursor.id.0),
    ));
    let limit = conditions.bind(SqlValue::Integer(i64::from(params.limit)));
    let filter = conditions.sql();
    let exact = exact(&mut conditions, search);
    let trigrams = conditions.bind(SqlValue::Text(trigrams.to_string()));
    let by_text = format!(
        "SELECT id FROM (SELECT job_text.rowid AS id FROM job_text
             JOIN jobs ON jobs.id = job_text.rowid
           WHERE job_text MATCH {trigrams} AND job_text.rowid < {before} AND {filter} AND {exact}
           ORDER BY job_text.rowid DESC LIMIT {limit})"
    );
    let matching = match search.id {
        Some(_) => {
            let id = conditions.bind(id_value(search));
            format!(
                "{by_text} UNION SELECT id FROM jobs WHERE id IS {id} AND id < {before} AND {filter}"
            )
        }
        None => by_text,
    };
    Query {
        sql: format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({matching}) ORDER BY id DESC LIMIT {limit}"
        ),
        values: conditions.values,
    }
}

/// How many jobs the list's filters match. Without a search, a parent, an owner or a time:
/// finished jobs from the kept counts, unfinished ones from the `jobs_status` index.
pub(crate) fn count(params: &JobListParams) -> Query {
    let Some(search) = &params.search else {
        if params.counts_by_row() {
            let conditions = filters(params, &params.statuses, Table::Jobs);
            return Query {
                sql: format!("SELECT count(*) FROM jobs WHERE {}", conditions.sql()),
                values: conditions.values,
            };
        }
        let wanted: Vec<JobStatus> = if params.statuses.is_empty() {
            JobStatus::ALL.to_vec()
        } else {
            params.statuses.clone()
        };
        let (finished, unfinished): (Vec<JobStatus>, Vec<JobStatus>) =
            wanted.into_iter().partition(|status| status.is_terminal());
        let mut parts = Vec::new();
        let mut values = Vec::new();
        if !finished.is_empty() {
            let part = filters_after(values, params, &finished, Table::Counts);
            parts.push(format!(
                "(SELECT coalesce(sum(count), 0) FROM job_counts WHERE {})",
                part.sql()
            ));
            values = part.values;
        }
        if !unfinished.is_empty() {
            let part = filters_after(values, params, &unfinished, Table::Jobs);
            parts.push(format!("(SELECT count(*) FROM jobs WHERE {})", part.sql()));
            values = part.values;
        }
        return Query {
            sql: format!("SELECT {}", parts.join(" + ")),
            values,
        };
    };
    let mut conditions = filters(params, &params.statuses, Table::Jobs);
    let id = conditions.bind(id_value(search));
    let filter = conditions.sql();
    let exact = exact(&mut conditions, search);
    let sql = match trigram_query(&search.needle) {
        None => format!("SELECT count(*) FROM jobs WHERE {filter} AND (id IS {id} OR {exact})"),
        Some(trigrams) => {
            let trigrams = conditions.bind(SqlValue::Text(trigrams));
            format!(
                "SELECT count(*) FROM (
                   SELECT job_text.rowid FROM job_text JOIN jobs ON jobs.id = job_text.rowid
                   WHERE job_text MATCH {trigrams} AND {filter} AND {exact}
                   UNION SELECT id FROM jobs WHERE id IS {id} AND {filter})"
            )
        }
    };
    Query {
        sql,
        values: conditions.values,
    }
}

fn id_value(search: &JobSearch) -> SqlValue {
    search
        .id
        .map_or(SqlValue::Null, |id| SqlValue::Integer(id.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_text_has_no_trigram_query() {
        assert_eq!(trigram_query("ab"), None);
    }

    #[test]
    fn a_text_is_looked_up_by_each_of_its_trigrams_once() {
        assert_eq!(
            trigram_query("aaaa\"b").unwrap(),
            r#""aaa" AND "aa""" AND "a""b""#
        );
    }

    #[test]
    fn a_long_text_is_narrowed_by_trigrams_spread_over_it() {
        let text: String = ('a'..='z').collect();
        let query = trigram_query(&text).unwrap();
        let terms: Vec<&str> = query.split(" AND ").collect();
        assert!(terms.len() <= MAX_TRIGRAMS, "{query}");
        assert_eq!(terms.first(), Some(&"\"abc\""));
        assert!(
            terms.contains(&"\"wxy\"") || terms.contains(&"\"xyz\""),
            "{query}"
        );
    }

    #[test]
    fn a_count_of_finished_roots_reads_the_kept_counts_alone() {
        let params = JobListParams {
            tree: TreeFilter::Roots,
            statuses: vec![runway_core::JobStatus::Failed],
            ..Default::default()
        };
        let query = count(&params);
        assert_eq!(
            query.sql,
            "SELECT (SELECT coalesce(sum(count), 0) FROM job_counts \
             WHERE root = 1 AND status IN ('failed'))"
        );
        assert!(query.values.is_empty());
    }
}

#[cfg(test)]
mod count_tests {
    use super::*;

    #[test]
    fn a_count_of_every_status_adds_the_kept_counts_and_the_unfinished_jobs() {
        let params = JobListParams {
            queues: vec!["gpu".into()],
            ..Default::default()
        };
        let query = count(&params);
        assert_eq!(
            query.sql,
            "SELECT (SELECT coalesce(sum(count), 0) FROM job_counts \
             WHERE status IN ('succeeded', 'failed', 'cancelled') \
             AND queue IN (SELECT value FROM json_each(?1))) + \
             (SELECT count(*) FROM jobs \
             WHERE status IN ('queued', 'scheduled', 'running', 'waiting') \
             AND queue IN (SELECT value FROM json_each(?2)))"
        );
        assert_eq!(query.values.len(), 2);
    }
}
