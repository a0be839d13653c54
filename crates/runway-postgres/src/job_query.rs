//! The SQL of the jobs list and of its counts, written for the filters a request has so each
//! uses its index: statuses spelled out for `(status, id)`, a search narrowed by the trigram
//! index of `job_text` (pg_trgm, through `LIKE`) and then tested exactly, counts of finished
//! jobs summed from `job_counts`.
//!
//! A search folds ASCII case only, like `JobSearch::matches`: `lower` under the `C` collation.

use runway_core::JobStatus;
use runway_core::job_order::{JobOrder, JobSort};
use runway_core::store::{JobListParams, JobSearch, TreeFilter};
use runway_core::time_range::TimeRange;
use tokio_postgres::types::ToSql;

use crate::rows::JOB_COLUMNS;

/// A parameter of a statement built at run time.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// A statement and its values, in the order of their `$N`.
pub(crate) struct Query {
    pub sql: String,
    pub values: Vec<Param>,
}

impl Query {
    pub(crate) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The conditions of one statement, with the values they bind.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    values: Vec<Param>,
}

impl Conditions {
    /// Binds `value` and returns its placeholder.
    fn bind(&mut self, value: Param) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    fn add(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "true".to_string()
        } else {
            self.clauses.join(" AND ")
        }
    }
}

/// Where a filter reads: `jobs` itself, or the kept counts of finished jobs (`root` stands for
/// `parent_id IS NULL`).
#[derive(Clone, Copy, PartialEq)]
enum Table {
    Jobs,
    Counts,
}

/// The filters every form shares (tree, types, queues, `statuses`) as conditions on `table`,
/// numbering their placeholders on from `conditions`'.
fn filters(
    conditions: &mut Conditions,
    params: &JobListParams,
    statuses: &[JobStatus],
    table: Table,
) {
    match (params.tree, table) {
        (TreeFilter::All, _) => {}
        (TreeFilter::Roots, Table::Jobs) => conditions.add("parent_id IS NULL".into()),
        (TreeFilter::Roots, Table::Counts) => conditions.add("root".into()),
        (TreeFilter::ChildrenOf(parent), _) => {
            let parent = conditions.bind(Box::new(parent.0));
            conditions.add(format!("parent_id = {parent}"));
        }
    }
    if let Some(owner) = params.owner {
        // The kept counts know no owner: a count of one owner's jobs reads `jobs`.
        debug_assert!(
            table == Table::Jobs,
            "counts of an owner are read from jobs"
        );
        let owner = conditions.bind(Box::new(owner.0));
        conditions.add(format!("owner_id = {owner}"));
    }
    if !statuses.is_empty() {
        // Core's names, never a client's text: written out so the planner sees them.
        let statuses: Vec<String> = statuses
            .iter()
            .map(|status| format!("'{}'", status.as_str()))
            .collect();
        conditions.add(format!("status IN ({})", statuses.join(", ")));
    }
    if !params.job_types.is_empty() {
        let types = conditions.bind(Box::new(storable(&params.job_types)));
        conditions.add(format!("job_type = ANY({types})"));
    }
    if !params.queues.is_empty() {
        let queues = conditions.bind(Box::new(storable(&params.queues)));
        conditions.add(format!("queue = ANY({queues})"));
    }
    if let Some(retried) = params.retry_of {
        let retried = conditions.bind(Box::new(retried.0));
        conditions.add(format!("retry_of = {retried}"));
    }
    if table == Table::Jobs {
        in_range(conditions, "created_at", params.created);
        in_range(conditions, "finished_at", params.finished);
    }
}

/// `column` within `range` (the kept counts know no time: `JobListParams::counts_by_row`).
fn in_range(conditions: &mut Conditions, column: &str, range: TimeRange) {
    let (from, to) = range.micros();
    if let Some(from) = from {
        let from = conditions.bind(Box::new(from));
        conditions.add(format!("{column} >= {from}"));
    }
    if let Some(to) = to {
        let to = conditions.bind(Box::new(to));
        conditions.add(format!("{column} < {to}"));
    }
}

/// A job's sort key in SQL: the value of `JobOrder::key`, with its missing key bound.
fn sort_key(conditions: &mut Conditions, order: JobOrder) -> String {
    let value = match order.sort {
        JobSort::Created => return "id".into(),
        JobSort::Attempts => return "attempt::bigint".into(),
        JobSort::Started => "started_at",
        JobSort::Finished => "finished_at",
        JobSort::Duration => "finished_at - started_at",
    };
    let missing = conditions.bind(Box::new(order.missing_key()));
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
        let id = conditions.bind(Box::new(cursor.id.0));
        if order.sort == JobSort::Created {
            conditions.add(format!("id {after} {id}"));
        } else {
            let at = conditions.bind(Box::new(order.cursor_key(&cursor)));
            conditions.add(format!("({key}, id) {after} ({at}, {id})"));
        }
    }
    if order.sort == JobSort::Created {
        format!("id {direction}")
    } else {
        format!("{key} {direction}, id {direction}")
    }
}

/// `text` as a `LIKE` pattern that matches it anywhere, its wildcards escaped.
fn containing(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

/// The values PostgreSQL can compare: its text cannot hold a NUL character (binding one fails
/// the statement), so no stored name has one, and a value with one matches nothing.
fn storable(values: &[String]) -> Vec<String> {
    values
        .iter()
        .filter(|value| !value.contains('\0'))
        .cloned()
        .collect()
}

/// The search as one condition: the job's id, or the needle in its type or input. The
/// `LIKE` on the job's text (`job_text`, as `INSERT_TEXT` writes it) lets the trigram index
/// narrow; the exact test decides.
fn search_condition(conditions: &mut Conditions, search: &JobSearch) -> String {
    // No job's text holds a NUL character (its input is JSON, which escapes it), and
    // PostgreSQL text cannot carry one to compare.
    let by_text = if search.needle.contains('\0') {
        "false".to_string()
    } else {
        let pattern = conditions.bind(Box::new(containing(&search.needle)));
        let needle = conditions.bind(Box::new(search.needle.clone()));
        format!(
            "(EXISTS (SELECT 1 FROM job_text WHERE job_text.id = jobs.id AND job_text.text LIKE {pattern}) \
         AND (strpos(lower(job_type COLLATE \"C\"), {needle}) > 0 \
         OR strpos(lower(input COLLATE \"C\"), {needle}) > 0))"
        )
    };
    match search.id {
        Some(id) => {
            let id = conditions.bind(Box::new(id.0));
            format!("(id = {id} OR {by_text})")
        }
        None => by_text,
    }
}

/// A page of the list in `params.order`, after `params.before`.
pub(crate) fn list(params: &JobListParams) -> Query {
    let mut conditions = Conditions::default();
    filters(&mut conditions, params, &params.statuses, Table::Jobs);
    if let Some(search) = &params.search {
        let search = search_condition(&mut conditions, search);
        conditions.add(search);
    }
    let order_by = ordering(&mut conditions, params);
    let limit = conditions.bind(Box::new(i64::from(params.limit)));
    let filter = conditions.sql();
    Query {
        sql: format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE {filter} ORDER BY {order_by} LIMIT {limit}"
        ),
        values: conditions.values,
    }
}

/// How many jobs the list's filters match. Without a search, a parent, an owner or a time:
/// finished jobs from the kept counts, unfinished ones from the `(status, queue)` index.
pub(crate) fn count(params: &JobListParams) -> Query {
    let plain = params.search.is_none() && !params.counts_by_row();
    if !plain {
        let mut conditions = Conditions::default();
        filters(&mut conditions, params, &params.statuses, Table::Jobs);
        if let Some(search) = &params.search {
            let search = search_condition(&mut conditions, search);
            conditions.add(search);
        }
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
    for (statuses, table) in [(finished, Table::Counts), (unfinished, Table::Jobs)] {
        if statuses.is_empty() {
            continue;
        }
        let mut conditions = Conditions {
            clauses: Vec::new(),
            values,
        };
        filters(&mut conditions, params, &statuses, table);
        parts.push(match table {
            Table::Counts => format!(
                "(SELECT coalesce(sum(count), 0)::bigint FROM job_counts WHERE {})",
                conditions.sql()
            ),
            Table::Jobs => format!("(SELECT count(*) FROM jobs WHERE {})", conditions.sql()),
        });
        values = conditions.values;
    }
    Query {
        sql: format!("SELECT {}", parts.join(" + ")),
        values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_pattern_matches_wildcards_literally() {
        assert_eq!(containing(r"50%_a\b"), r"%50\%\_a\\b%");
    }

    #[test]
    fn a_count_of_finished_roots_reads_the_kept_counts_alone() {
        let params = JobListParams {
            tree: TreeFilter::Roots,
            statuses: vec![JobStatus::Failed],
            ..Default::default()
        };
        let query = count(&params);
        assert_eq!(
            query.sql,
            "SELECT (SELECT coalesce(sum(count), 0)::bigint FROM job_counts \
             WHERE root AND status IN ('failed'))"
        );
        assert!(query.values.is_empty());
    }
}
