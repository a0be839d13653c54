//! A queue's history over a span of time, for its charts: per bucket of time, how many jobs
//! finished and how (succeeded, failed, cancelled), and how long they waited and ran (p50 and
//! p95). Stores count and sample; the buckets and percentiles are computed here, the same for
//! every store.

use crate::clock::Timestamp;
use crate::job::JobStatus;

/// The spans a history covers, each with the width of its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistorySpan {
    /// 15 minutes in 30 buckets of 30 s.
    Minutes15,
    /// An hour in 60 buckets of a minute.
    Hour,
    /// A day in 96 buckets of 15 minutes.
    Day,
    /// A week in 168 buckets of an hour.
    Week,
}

impl HistorySpan {
    pub const ALL: [HistorySpan; 4] = [
        HistorySpan::Minutes15,
        HistorySpan::Hour,
        HistorySpan::Day,
        HistorySpan::Week,
    ];

    /// The span's name in the API: `15m`, `1h`, `24h`, `7d`.
    pub fn as_str(self) -> &'static str {
        match self {
            HistorySpan::Minutes15 => "15m",
            HistorySpan::Hour => "1h",
            HistorySpan::Day => "24h",
            HistorySpan::Week => "7d",
        }
    }

    pub fn parse(text: &str) -> Option<HistorySpan> {
        HistorySpan::ALL
            .into_iter()
            .find(|span| span.as_str() == text)
    }

    pub fn bucket_seconds(self) -> i64 {
        match self {
            HistorySpan::Minutes15 => 30,
            HistorySpan::Hour => 60,
            HistorySpan::Day => 15 * 60,
            HistorySpan::Week => 60 * 60,
        }
    }

    pub fn buckets(self) -> usize {
        match self {
            HistorySpan::Minutes15 => 30,
            HistorySpan::Hour => 60,
            HistorySpan::Day => 96,
            HistorySpan::Week => 168,
        }
    }

    /// Where the span starts when it ends with the bucket holding `now`: buckets are aligned
    /// to their width, so two reads a moment apart draw the same bars.
    pub fn window(self, now: Timestamp) -> HistoryWindow {
        let width = self.bucket_seconds() * 1_000_000;
        let current = now.timestamp_micros().div_euclid(width);
        HistoryWindow {
            from_micros: (current - self.buckets() as i64 + 1) * width,
            bucket_micros: width,
            buckets: self.buckets(),
        }
    }
}

/// The time a history reads: `buckets` buckets of `bucket_micros` from `from_micros`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryWindow {
    pub from_micros: i64,
    pub bucket_micros: i64,
    pub buckets: usize,
}

impl HistoryWindow {
    pub fn to_micros(&self) -> i64 {
        self.from_micros + self.bucket_micros * self.buckets as i64
    }

    /// The bucket of an instant in the window (clamped to its ends).
    pub fn bucket_of(&self, micros: i64) -> usize {
        ((micros - self.from_micros).div_euclid(self.bucket_micros))
            .clamp(0, self.buckets as i64 - 1) as usize
    }
}

/// One job of the sample a store read: when it finished, how long it waited from being due to
/// its last start, and how long that run took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedSample {
    pub finished_micros: i64,
    pub waited_micros: i64,
    pub ran_micros: i64,
}

/// One bucket of a queue's history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryBucket {
    pub start: i64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Percentiles in milliseconds over the bucket's sampled jobs; `None` without any.
    pub wait_p50_ms: Option<f64>,
    pub wait_p95_ms: Option<f64>,
    pub run_p50_ms: Option<f64>,
    pub run_p95_ms: Option<f64>,
}

/// A queue's history: exact counts, and percentiles from every job or, when the span holds
/// more than a store reads at once, from an even sample of them (`sampled`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueHistory {
    pub span: HistorySpan,
    pub window: HistoryWindow,
    pub buckets: Vec<HistoryBucket>,
    pub sampled: bool,
}

/// Most jobs whose times a history reads; past it, every n-th job by id.
pub const HISTORY_SAMPLE: u64 = 20_000;

/// What a store read for a history: the jobs that finished in the window counted by bucket and
/// status, and the times of all of them, or of every `HISTORY_SAMPLE`-th share (`sampled`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryRows {
    pub counts: Vec<(usize, JobStatus, u64)>,
    pub samples: Vec<FinishedSample>,
    pub sampled: bool,
}

impl HistoryRows {
    /// Every how many jobs (in id order) a store reads the times of, given how many finished
    /// and how many it may read.
    pub fn sample_every(finished: u64, limit: u64) -> u64 {
        finished.div_ceil(limit.max(1)).max(1)
    }
}

impl QueueHistory {
    /// The history of a window from what a store counted (`(finished_micros bucket start,
    /// status, count)` as `(bucket, status, count)`) and sampled.
    pub fn build(span: HistorySpan, window: HistoryWindow, rows: &HistoryRows) -> QueueHistory {
        let (counts, samples, sampled) = (&rows.counts, &rows.samples, rows.sampled);
        let mut buckets: Vec<HistoryBucket> = (0..window.buckets)
            .map(|index| HistoryBucket {
                start: window.from_micros + window.bucket_micros * index as i64,
                ..HistoryBucket::default()
            })
            .collect();
        for &(bucket, status, count) in counts.iter() {
            let Some(bucket) = buckets.get_mut(bucket) else {
                continue;
            };
            match status {
                JobStatus::Succeeded => bucket.succeeded += count,
                JobStatus::Failed => bucket.failed += count,
                JobStatus::Cancelled => bucket.cancelled += count,
                _ => {}
            }
        }
        let mut waits: Vec<Vec<i64>> = vec![Vec::new(); window.buckets];
        let mut runs: Vec<Vec<i64>> = vec![Vec::new(); window.buckets];
        for sample in samples.iter() {
            let bucket = window.bucket_of(sample.finished_micros);
            waits[bucket].push(sample.waited_micros.max(0));
            runs[bucket].push(sample.ran_micros.max(0));
        }
        for (index, bucket) in buckets.iter_mut().enumerate() {
            bucket.wait_p50_ms = percentile_ms(&mut waits[index], 50);
            bucket.wait_p95_ms = percentile_ms(&mut waits[index], 95);
            bucket.run_p50_ms = percentile_ms(&mut runs[index], 50);
            bucket.run_p95_ms = percentile_ms(&mut runs[index], 95);
        }
        QueueHistory {
            span,
            window,
            buckets,
            sampled,
        }
    }
}

/// The nearest-rank percentile of `values` (microseconds) in milliseconds.
fn percentile_ms(values: &mut [i64], percent: usize) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (percent * values.len()).div_ceil(100).max(1);
    Some(values[rank - 1] as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn a_window_ends_with_the_bucket_of_now_and_is_aligned() {
        let now = Utc.timestamp_opt(1_700_000_095, 0).unwrap();
        let window = HistorySpan::Hour.window(now);
        assert_eq!(window.bucket_micros, 60_000_000);
        assert_eq!(window.from_micros % window.bucket_micros, 0);
        assert_eq!(window.bucket_of(now.timestamp_micros()), 59);
        assert!(window.to_micros() > now.timestamp_micros());
    }

    #[test]
    fn counts_and_percentiles_land_in_their_buckets() {
        let window = HistoryWindow {
            from_micros: 0,
            bucket_micros: 1_000_000,
            buckets: 3,
        };
        let counts = [
            (0, JobStatus::Succeeded, 4),
            (0, JobStatus::Failed, 1),
            (2, JobStatus::Cancelled, 2),
        ];
        let samples: Vec<FinishedSample> = (1..=20)
            .map(|n| FinishedSample {
                finished_micros: 500_000,
                waited_micros: n * 1000,
                ran_micros: n * 10_000,
            })
            .collect();
        let rows = HistoryRows {
            counts: counts.to_vec(),
            samples,
            sampled: false,
        };
        let history = QueueHistory::build(HistorySpan::Minutes15, window, &rows);
        let first = &history.buckets[0];
        assert_eq!((first.succeeded, first.failed, first.cancelled), (4, 1, 0));
        assert_eq!(first.wait_p50_ms, Some(10.0));
        assert_eq!(first.wait_p95_ms, Some(19.0));
        assert_eq!(first.run_p95_ms, Some(190.0));
        assert_eq!(
            history.buckets[1],
            HistoryBucket {
                start: 1_000_000,
                ..HistoryBucket::default()
            }
        );
        assert_eq!(history.buckets[2].cancelled, 2);
        assert_eq!(history.buckets[2].run_p50_ms, None);
    }

    #[test]
    fn every_span_reads_by_its_name() {
        for span in HistorySpan::ALL {
            assert_eq!(HistorySpan::parse(span.as_str()), Some(span));
        }
        assert_eq!(HistorySpan::parse("2h"), None);
    }
}
