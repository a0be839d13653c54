//! Draws the model: a header, the queues, the jobs (and the open job's progress and log), and a
//! line of keys. Laid out for 80×24 and up; ratatui writes only the cells that changed.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row as TableRow, Table, TableState, Wrap};

use super::model::{Connection, Focus, Mode, Model, Row};

/// Rows of the queues pane at most (more scroll).
const QUEUE_ROWS: u16 = 4;

pub fn render(frame: &mut Frame, model: &Model, now: DateTime<Utc>) {
    let queue_rows = (model.queues.len() as u16).clamp(1, QUEUE_ROWS);
    let [header, queues, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(queue_rows + 3),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    render_header(frame, header, model);
    render_queues(frame, queues, model, now);
    match &model.detail {
        Some(_) => {
            let [jobs, detail] =
                Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)])
                    .areas(body);
            render_jobs(frame, jobs, model, now);
            render_detail(frame, detail, model, now);
        }
        None => render_jobs(frame, body, model, now),
    }
    render_footer(frame, footer, model);
    if model.mode == Mode::Help {
        render_help(frame, frame.area());
    }
}

fn render_header(frame: &mut Frame, area: Rect, model: &Model) {
    let (state, color) = match &model.connection {
        Connection::Connecting => ("connecting…".to_string(), Color::Yellow),
        Connection::Live => ("● live".to_string(), Color::Green),
        Connection::Reconnecting(why) => (format!("reconnecting ({why})"), Color::Red),
    };
    let mut spans = vec![
        Span::styled("runway top", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw("  "),
        Span::raw(model.server.clone()),
    ];
    if let Some(user) = &model.user {
        spans.push(Span::raw(format!(
            "  {} ({})",
            user.name,
            user.role.as_str()
        )));
    }
    spans.push(Span::raw("  "));
    spans.push(Span::styled(state, Style::new().fg(color)));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn pane(title: String, focused: bool) -> Block<'static> {
    let style = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new()
    };
    Block::bordered().title(title).border_style(style)
}

fn render_queues(frame: &mut Frame, area: Rect, model: &Model, now: DateTime<Utc>) {
    let rows = model.queues.iter().map(|queue| {
        let state = if queue.paused { "paused" } else { "active" };
        TableRow::new(vec![
            Cell::from(queue.name.clone()),
            Cell::from(queue.queued.to_string()),
            Cell::from(format!("{}/{}", queue.running, queue.concurrency)),
            Cell::from(
                queue
                    .oldest_queued_at
                    .map_or("-".to_string(), |at| age(now, at)),
            ),
            Cell::from(state).style(if queue.paused {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            }),
            Cell::from(format!("{} ok  {} failed", queue.succeeded, queue.failed)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(14),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Min(10),
        ],
    )
    .header(
        TableRow::new(["QUEUE", "DEPTH", "RUNNING", "OLDEST", "STATE", "FINISHED"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(pane("Queues".into(), model.focus == Focus::Queues))
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default();
    if model.focus == Focus::Queues && !model.queues.is_empty() {
        state.select(Some(model.queue_selected));
    }
    frame.render_stateful_widget(table, area, &mut state);
}

fn status_style(status: &str) -> Style {
    match status {
        "running" => Style::new().fg(Color::Cyan),
        "succeeded" => Style::new().fg(Color::Green),
        "failed" => Style::new().fg(Color::Red),
        "cancelled" => Style::new().fg(Color::DarkGray),
        "waiting" | "scheduled" => Style::new().fg(Color::Magenta),
        _ => Style::new().fg(Color::Yellow),
    }
}

/// A progress bar of `width` cells and the percentage.
fn bar(row: &Row, width: usize) -> String {
    let fraction = match (row.status.as_str(), row.progress) {
        ("succeeded", _) => 1.0,
        (_, Some(fraction)) => fraction.clamp(0.0, 1.0),
        _ => return String::new(),
    };
    let filled = (fraction * width as f64).round() as usize;
    format!(
        "{}{} {:>3}%",
        "█".repeat(filled),
        "░".repeat(width - filled),
        (fraction * 100.0).round() as u32
    )
}

fn render_jobs(frame: &mut Frame, area: Rect, model: &Model, now: DateTime<Utc>) {
    let admin = model
        .user
        .as_ref()
        .is_some_and(|user| user.role == runway_api::users::Role::Admin);
    let rows = model.rows.iter().map(|row| {
        let mut cells = vec![
            Cell::from(row.id.clone()),
            Cell::from(row.job_type.clone()),
            Cell::from(row.status.clone()).style(status_style(&row.status)),
            Cell::from(bar(row, 10)),
            Cell::from(row.queue.clone()),
            Cell::from(match (row.started_at, row.finished_at) {
                (Some(started), Some(finished)) => span(finished - started),
                (Some(started), None) => span(now - started),
                _ => String::new(),
            }),
            Cell::from(age(now, row.created_at)),
        ];
        if admin {
            cells.push(Cell::from(row.owner.clone().unwrap_or_default()));
        }
        TableRow::new(cells)
    });
    let mut widths = vec![
        Constraint::Length(7),
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Length(15),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(5),
    ];
    let mut header = vec!["ID", "TYPE", "STATUS", "PROGRESS", "QUEUE", "TIME", "AGE"];
    if admin {
        widths.push(Constraint::Min(6));
        header.push("OWNER");
    }
    let mut title = format!("Jobs · {}", model.status_filter.unwrap_or("every status"));
    if !model.search.is_empty() {
        title.push_str(&format!(" · search “{}”", model.search));
    }
    title.push_str(&format!(" · {}", model.rows.len()));
    let table = Table::new(rows, widths)
        .header(TableRow::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(pane(title, model.focus == Focus::Jobs))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default();
    state.select(model.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
    if model.rows.is_empty() {
        let inner = area.inner(ratatui::layout::Margin::new(2, 2));
        let text = match model.connection {
            Connection::Live => "No jobs match.",
            _ => "",
        };
        frame.render_widget(Paragraph::new(text), inner);
    }
}

fn render_detail(frame: &mut Frame, area: Rect, model: &Model, now: DateTime<Utc>) {
    let Some(detail) = &model.detail else {
        return;
    };
    let mut lines = Vec::new();
    if let Some(job) = &detail.job {
        let mut head = vec![
            Span::raw(format!("{} ", job.job_type)),
            Span::styled(job.status.clone(), status_style(&job.status)),
            Span::raw(format!("  attempt {}/{}", job.attempt, job.max_attempts)),
        ];
        if let Some(started) = job.started_at {
            let end = job.finished_at.unwrap_or(now);
            head.push(Span::raw(format!("  {}", span(end - started))));
        }
        lines.push(Line::from(head));
        let progress = bar(job, 20);
        if !progress.is_empty() || job.message.is_some() {
            lines.push(Line::from(format!(
                "{progress}  {}",
                job.message.clone().unwrap_or_default()
            )));
        }
        if let Some(error) = &job.error {
            lines.push(Line::styled(
                format!("error: {error}"),
                Style::new().fg(Color::Red),
            ));
        }
    }
    // The tail of the log that fits below.
    let inner_height = area.height.saturating_sub(2) as usize;
    let room = inner_height.saturating_sub(lines.len());
    let log: Vec<&str> = detail.log.lines().collect();
    let tail = &log[log.len().saturating_sub(room)..];
    if tail.is_empty() && room > 0 {
        lines.push(Line::styled(
            "(no log yet)",
            Style::new().fg(Color::DarkGray),
        ));
    }
    lines.extend(tail.iter().map(|line| Line::from(line.to_string())));
    let block = Block::bordered().title(format!("Job {} · Esc closes", detail.id));
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn render_footer(frame: &mut Frame, area: Rect, model: &Model) {
    let line = match &model.mode {
        Mode::Search(text) => Line::from(vec![
            Span::styled("search: ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(text.clone()),
            Span::styled("▏", Style::new().fg(Color::Cyan)),
            Span::raw("  Enter apply · Esc back"),
        ]),
        Mode::ConfirmCancel(id) => Line::styled(
            format!("Cancel job {id}? y: yes, any other key: no"),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        _ => match &model.notice {
            Some((text, true)) => Line::styled(text.clone(), Style::new().fg(Color::Red)),
            Some((text, false)) => Line::from(text.clone()),
            None => Line::from(
                "q quit  ↑↓ move  ⏎ open  c cancel  r retry  p pause  s status  / search  ? help",
            ),
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn render_help(frame: &mut Frame, area: Rect) {
    let help = [
        "↑ ↓  k j    move in the focused pane (PgUp PgDn, g G: far)",
        "Tab         switch between jobs and queues",
        "Enter       open or close the job's progress and live log",
        "Esc         close the job",
        "c           cancel the job (asks first)",
        "r           retry the finished job",
        "p           pause or resume the queue (of the job, or the one selected)",
        "s           next status filter",
        "/           search by id, type or input",
        "q  Ctrl-C   quit",
        "",
        "any key closes this help",
    ];
    let width = 66.min(area.width);
    let height = (help.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(Text::from_iter(help)).block(Block::bordered().title("Keys")),
        popup,
    );
}

/// How long ago `at` was, in one unit: `12s`, `3m`, `2h`, `4d`.
fn age(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    span(now - at)
}

fn span(duration: chrono::Duration) -> String {
    let seconds = duration.num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}
