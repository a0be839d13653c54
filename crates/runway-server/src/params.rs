//! Request parameters shared by several routes: comma-separated lists, statuses, query
//! strings and WebSocket upgrades, each refused with a JSON 400 that says what is wrong.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use runway_api::{JobSortField, SortOrder};
use runway_core::job_order::{JobCursor, JobOrder, JobSort};
use runway_core::store::JobSearch;
use runway_core::time_range::TimeRange;
use runway_core::{JobId, JobStatus};

/// Longest search text (`q`), in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

use crate::error::ApiError;

/// `a, b,,c` → `["a", "b", "c"]`; absent → empty (no filter).
pub fn comma_list(list: Option<&str>) -> Vec<String> {
    list.map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// The `status` parameter: job statuses joined by commas (no spaces, no empty items, as the
/// pattern the routes declare says); absent, no filter.
pub fn statuses(list: Option<&str>) -> Result<Vec<JobStatus>, ApiError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(|status| status.parse::<JobStatus>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| {
            ApiError::bad_request(format!(
                "`status`: {message}; join statuses with commas, no spaces (status=queued,running)"
            ))
        })
}

/// Job statuses given as a list (`field` names it in the error).
pub fn status_list(field: &str, list: &[String]) -> Result<Vec<JobStatus>, ApiError> {
    list.iter()
        .map(|status| status.parse::<JobStatus>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| ApiError::bad_request(format!("`{field}`: {message}")))
}

/// Search text (`field`): blank is no search; longer than [`MAX_SEARCH_CHARS`] is refused.
pub fn search(field: &str, text: Option<&str>) -> Result<Option<JobSearch>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let length = text.chars().count();
    if length > MAX_SEARCH_CHARS {
        return Err(ApiError::bad_request(format!(
            "`{field}` is {length} characters; search with at most {MAX_SEARCH_CHARS}"
        )));
    }
    Ok(JobSearch::new(text))
}

pub fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(query)| query).map_err(|rejection| {
        ApiError::bad_request(format!("invalid query string: {}", rejection.body_text()))
    })
}

pub fn websocket(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<WebSocketUpgrade, ApiError> {
    upgrade.map_err(|rejection| {
        ApiError::bad_request(format!(
            "this route is a WebSocket: connect with an upgrade request ({})",
            rejection.body_text()
        ))
    })
}

/// A page's `limit`: `default` when absent, refused outside 1..=`max`.
pub fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` is {limit}; use 1..={max}"
        )));
    }
    Ok(limit)
}

/// A `cursor` this server gave out, if one was sent.
pub fn cursor(cursor: Option<&str>) -> Result<Option<JobCursor>, ApiError> {
    cursor
        .map(|cursor| {
            JobCursor::parse(cursor)
                .map_err(|message| ApiError::bad_request(format!("`cursor`: {message}")))
        })
        .transpose()
}

/// A `cursor` of a list of children (a job id), if one was sent.
pub fn id_cursor(cursor: Option<&str>) -> Result<Option<JobId>, ApiError> {
    cursor
        .map(|cursor| {
            cursor.parse::<JobId>().map_err(|_| {
                ApiError::bad_request(format!(
                    "`cursor` `{cursor}` is not a cursor this server gave out"
                ))
            })
        })
        .transpose()
}

/// The order of a list from its `sort` and `order`: newest first without them.
pub fn job_order(sort: Option<JobSortField>, order: Option<SortOrder>) -> JobOrder {
    JobOrder {
        sort: match sort.unwrap_or_default() {
            JobSortField::Created => JobSort::Created,
            JobSortField::Started => JobSort::Started,
            JobSortField::Finished => JobSort::Finished,
            JobSortField::Duration => JobSort::Duration,
            JobSortField::Attempts => JobSort::Attempts,
        },
        ascending: order == Some(SortOrder::Asc),
    }
}

/// The four time bounds of a list, count or bulk filter (`created_after`, `created_before`,
/// `finished_after`, `finished_before`), as given.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeBounds<'a> {
    pub created_after: Option<&'a str>,
    pub created_before: Option<&'a str>,
    pub finished_after: Option<&'a str>,
    pub finished_before: Option<&'a str>,
}

impl TimeBounds<'_> {
    /// The created and the finished range; an instant that is not RFC 3339 is refused.
    pub fn ranges(&self, prefix: &str) -> Result<(TimeRange, TimeRange), ApiError> {
        Ok((
            time_range(prefix, "created", self.created_after, self.created_before)?,
            time_range(
                prefix,
                "finished",
                self.finished_after,
                self.finished_before,
            )?,
        ))
    }
}

fn time_range(
    prefix: &str,
    what: &str,
    after: Option<&str>,
    before: Option<&str>,
) -> Result<TimeRange, ApiError> {
    let instant = |end: &str, text: Option<&str>| {
        text.map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|at| at.to_utc())
                .map_err(|error| {
                    ApiError::bad_request(format!(
                        "`{prefix}{what}_{end}` `{text}` is not an RFC 3339 instant ({error}); \
                         write it as 2026-11-29T08:00:00Z"
                    ))
                })
        })
        .transpose()
    };
    // A range that ends before it starts is empty, like `parent` with `roots`: no job, no error.
    Ok(TimeRange {
        from: instant("after", after)?,
        to: instant("before", before)?,
    })
}

/// A job id from a path segment.
pub fn job_id(text: &str) -> Result<JobId, ApiError> {
    text.parse().map_err(ApiError::bad_request)
}

#[cfg(test)]
mod tests {
    use runway_core::JobStatus;

    use super::statuses;

    const STATUS_LIST_PATTERN: &str = "^(queued|scheduled|running|waiting|succeeded|failed|cancelled)(,(queued|scheduled|running|waiting|succeeded|failed|cancelled))*$";

    #[test]
    fn every_status_filter_declares_the_pattern_the_parser_follows() {
        let document = serde_json::to_value(crate::openapi()).unwrap();
        for path in ["/v1/jobs", "/v1/jobs/count", "/v1/jobs/updates"] {
            let parameters = document["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap();
            let status = parameters
                .iter()
                .find(|parameter| parameter["name"] == "status")
                .unwrap();
            assert_eq!(status["schema"]["pattern"], STATUS_LIST_PATTERN, "{path}");
        }
        for status in JobStatus::ALL {
            assert!(STATUS_LIST_PATTERN.contains(status.as_str()), "{status}");
        }
        assert_eq!(
            statuses(Some("queued,running")).unwrap(),
            [JobStatus::Queued, JobStatus::Running]
        );
        for refused in ["", "queued,", "queued, running", ",queued", "ok"] {
            assert!(statuses(Some(refused)).is_err(), "{refused:?}");
        }
    }
}
