//! Printing: tidy tables for people, JSON for scripts, and job-derived text cleaned of
//! terminal escapes so a job's output cannot drive the user's terminal.

use std::io::Write;

use chrono::{DateTime, Utc};
use comfy_table::presets::NOTHING;
use comfy_table::{Cell, Table};
use runway_api::JobResponse;
use serde::Serialize;

pub fn print_json(value: &impl Serialize) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)
}

pub fn print_line(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
}

/// Removes control characters (escape sequences included) except newline and tab.
pub fn sanitize(text: &str) -> String {
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip a CSI sequence (ESC [ … final byte) or a two-character escape.
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&next) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\n' || c == '\t' || !c.is_control() {
            clean.push(c);
        }
    }
    clean
}

pub fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(NOTHING);
    table.set_header(headers.iter().map(Cell::new));
    table
}

pub fn print_table(table: &Table) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    for line in table.lines() {
        writeln!(stdout, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Named values, one per line, names right-aligned; a value of several lines stays aligned.
pub fn print_fields(rows: &[(&str, String)]) -> std::io::Result<()> {
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, value) in rows {
        let mut lines = value.lines();
        print_line(&format!("{name:>width$}  {}", lines.next().unwrap_or("")))?;
        for line in lines {
            print_line(&format!("{:>width$}  {line}", ""))?;
        }
    }
    Ok(())
}

pub fn when(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub fn duration(job: &JobResponse) -> String {
    let Some(started) = job.started_at else {
        return String::new();
    };
    let end = job.finished_at.unwrap_or_else(Utc::now);
    let millis = (end - started).num_milliseconds().max(0);
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis < 60_000 {
        format!("{:.1}s", millis as f64 / 1000.0)
    } else {
        let seconds = millis / 1000;
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    }
}

pub fn progress(job: &JobResponse) -> String {
    match &job.progress {
        Some(progress) => format!("{:.0}%", progress.fraction * 100.0),
        None => String::new(),
    }
}

/// A short, one-line view of a job's input.
pub fn summary(job: &JobResponse, width: usize) -> String {
    let text = match job
        .input
        .get("command")
        .and_then(|command| command.as_str())
    {
        Some(line) if job.job_type == "shell" => line.to_string(),
        _ => job.input.to_string(),
    };
    let text = sanitize(&text).replace(['\n', '\t'], " ");
    if text.chars().count() > width {
        let cut: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_control_characters_are_removed() {
        assert_eq!(sanitize("a\u{1b}[31mred\u{1b}[0m b"), "ared b");
        assert_eq!(sanitize("bell\u{7}\tok\n"), "bell\tok\n");
        assert_eq!(sanitize("\u{1b}]0;title"), "0;title");
    }
}
