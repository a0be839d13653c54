//! What `runway top` shows and how it changes: session messages and keys come in, the model
//! changes, and commands for the session and the REST API go out. No I/O here, so each rule is
//! a plain function of the model.

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use runway_api::session::ServerMessage;
use runway_api::users::UserResponse;
use runway_api::{JobListResponse, JobResponse, JobUpdate, QueueResponse};

use crate::output::sanitize;

/// Newest jobs the list keeps.
pub const LIST_LIMIT: u32 = 200;
/// Log text kept of the open job: its tail.
const LOG_TAIL: usize = 64 * 1024;

/// The status filters `s` steps through; `None` shows every status.
const STATUS_FILTERS: [Option<&str>; 8] = [
    None,
    Some("running"),
    Some("queued"),
    Some("failed"),
    Some("succeeded"),
    Some("cancelled"),
    Some("waiting"),
    Some("scheduled"),
];

/// One job as a row shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub job_type: String,
    pub queue: String,
    pub status: String,
    pub progress: Option<f64>,
    pub message: Option<String>,
    pub error: Option<String>,
    pub attempt: u32,
    pub max_attempts: u32,
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&JobResponse> for Row {
    fn from(job: &JobResponse) -> Row {
        Row {
            id: job.id.clone(),
            job_type: sanitize(&job.job_type),
            queue: job.queue.clone(),
            status: job.status.clone(),
            progress: job.progress.as_ref().map(|progress| progress.fraction),
            message: job
                .progress
                .as_ref()
                .and_then(|progress| progress.message.as_deref())
                .map(sanitize),
            error: job.error.as_deref().map(sanitize),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            owner: job.owner.clone(),
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

impl From<&JobUpdate> for Row {
    fn from(update: &JobUpdate) -> Row {
        Row {
            id: update.job_id.clone(),
            job_type: sanitize(&update.job_type),
            queue: update.queue.clone(),
            status: update.status.clone(),
            progress: update.progress.as_ref().map(|progress| progress.fraction),
            message: update
                .progress
                .as_ref()
                .and_then(|progress| progress.message.as_deref())
                .map(sanitize),
            error: update.error.as_deref().map(sanitize),
            attempt: update.attempt,
            max_attempts: update.max_attempts,
            owner: update.owner.clone(),
            created_at: update.created_at,
            started_at: update.started_at,
            finished_at: update.finished_at,
        }
    }
}

impl Row {
    pub fn finished(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

/// The job whose progress and log are open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detail {
    pub id: String,
    pub job: Option<Row>,
    /// The tail of its log, cleaned of terminal escapes.
    pub log: String,
    /// Offset in the whole log just past what `log` holds: text arrives by offset, each byte
    /// kept once.
    pub log_end: u64,
}

impl Detail {
    fn append(&mut self, offset: u64, data: &str) {
        let end = offset + data.len() as u64;
        if end <= self.log_end || offset > self.log_end {
            return;
        }
        let skip = (self.log_end - offset) as usize;
        let Some(new) = data.get(skip..) else {
            return;
        };
        self.log.push_str(&sanitize(new));
        self.log_end = end;
        if self.log.len() > LOG_TAIL {
            let mut cut = self.log.len() - LOG_TAIL;
            while !self.log.is_char_boundary(cut) {
                cut += 1;
            }
            self.log.drain(..cut);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    Connecting,
    Live,
    /// Lost; trying again.
    Reconnecting(String),
}

/// Which pane the arrow keys move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Jobs,
    Queues,
}

/// What the keys do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing a search; the text so far.
    Search(String),
    /// Asking before cancelling this job.
    ConfirmCancel(String),
    Help,
}

/// What the model asks of the session and the API.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// (Re)subscribe the job list with the current filter; `since` when resuming it.
    SubscribeList {
        since: Option<i64>,
    },
    SubscribeDetail(String),
    UnsubscribeDetail,
    Cancel(String),
    Retry(String),
    SetQueuePaused {
        queue: String,
        paused: bool,
    },
    Quit,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub server: String,
    pub user: Option<UserResponse>,
    pub connection: Connection,
    pub queues: Vec<QueueResponse>,
    /// Newest first.
    pub rows: Vec<Row>,
    /// The position the list reflects, to resume it after a reconnect.
    pub list_seq: Option<i64>,
    pub status_filter: Option<&'static str>,
    pub search: String,
    pub selected: Option<String>,
    pub queue_selected: usize,
    pub focus: Focus,
    pub detail: Option<Detail>,
    pub mode: Mode,
    /// The last action's outcome, shown on the bottom line: (text, is an error).
    pub notice: Option<(String, bool)>,
}

impl Model {
    pub fn new(server: String) -> Model {
        Model {
            server,
            user: None,
            connection: Connection::Connecting,
            queues: Vec::new(),
            rows: Vec::new(),
            list_seq: None,
            status_filter: None,
            search: String::new(),
            selected: None,
            queue_selected: 0,
            focus: Focus::Jobs,
            detail: None,
            mode: Mode::Normal,
            notice: None,
        }
    }

    /// The index of the selected row, if it is still listed.
    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected.as_ref()?;
        self.rows.iter().position(|row| &row.id == id)
    }

    fn selected_row(&self) -> Option<&Row> {
        self.selected_index().map(|index| &self.rows[index])
    }

    /// A session message arrived.
    pub fn apply(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Welcome { user, .. } => {
                self.connection = Connection::Live;
                self.user = user;
            }
            ServerMessage::Assign { key, seq, value } if key == "jobs" => {
                if let Ok(page) = serde_json::from_value::<JobListResponse>(value) {
                    self.rows = page.jobs.iter().map(Row::from).collect();
                    self.list_seq = Some(seq);
                    self.keep_selection();
                }
            }
            ServerMessage::Assign { key, value, .. } if key == "detail" => {
                if let (Some(detail), Ok(job)) = (
                    self.detail.as_mut(),
                    serde_json::from_value::<JobResponse>(value),
                ) && detail.id == job.id
                {
                    detail.job = Some(Row::from(&job));
                }
            }
            ServerMessage::Frame { key, frame } if key == "jobs" => {
                for update in &frame.jobs {
                    self.update_row(Row::from(update));
                }
                self.list_seq = Some(frame.upto);
                self.keep_selection();
            }
            ServerMessage::Frame { key, frame } if key == "detail" => {
                if let Some(detail) = self.detail.as_mut() {
                    let id = detail.id.clone();
                    for log in frame.logs.iter().filter(|log| log.job_id == id) {
                        detail.append(log.offset, &log.data);
                    }
                    if let Some(update) = frame.jobs.iter().rev().find(|u| u.job_id == detail.id) {
                        detail.job = Some(Row::from(update));
                    }
                }
            }
            ServerMessage::Log {
                key,
                job_id,
                offset,
                data,
                ..
            } if key == "detail" => {
                if let Some(detail) = self.detail.as_mut()
                    && detail.id == job_id
                {
                    detail.append(offset, &data);
                }
            }
            ServerMessage::Reply { value, .. } => {
                if let Ok(job) = serde_json::from_value::<JobResponse>(value) {
                    self.notice = Some((format!("job {} is {}", job.id, job.status), false));
                }
            }
            ServerMessage::Error { message, .. } => {
                self.notice = Some((sanitize(&message), true));
            }
            ServerMessage::Resync { key, .. } if key == "jobs" => {
                self.list_seq = None;
            }
            _ => {}
        }
    }

    /// A change of a listed job: its row changes, or it leaves the list when it no longer
    /// matches the status filter; a new job that matches joins it.
    fn update_row(&mut self, row: Row) {
        let matches = self.status_filter.is_none_or(|status| status == row.status);
        let position = self.rows.iter().position(|held| held.id == row.id);
        match (position, matches) {
            (Some(index), true) => self.rows[index] = row,
            (Some(index), false) => {
                self.rows.remove(index);
            }
            (None, true) => {
                let number = id_number(&row.id);
                let at = self
                    .rows
                    .iter()
                    .position(|held| id_number(&held.id) < number)
                    .unwrap_or(self.rows.len());
                self.rows.insert(at, row);
                self.rows.truncate(LIST_LIMIT as usize);
            }
            (None, false) => {}
        }
    }

    /// Keeps a selection on a listed row: the same job when it is still there, else the first.
    fn keep_selection(&mut self) {
        if self.selected_index().is_none() {
            self.selected = self.rows.first().map(|row| row.id.clone());
        }
    }

    /// The session is gone; the model shows it and will resume.
    pub fn disconnected(&mut self, why: String) {
        self.connection = Connection::Reconnecting(sanitize(&why));
    }

    /// What to subscribe after (re)connecting: the list (resumed when held) and the open job.
    pub fn resubscribe(&self) -> Vec<Command> {
        let mut commands = vec![Command::SubscribeList {
            since: self.list_seq,
        }];
        if let Some(detail) = &self.detail {
            commands.push(Command::SubscribeDetail(detail.id.clone()));
        }
        commands
    }

    /// A key was pressed.
    pub fn key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return vec![Command::Quit];
        }
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            Mode::Search(mut text) => match key.code {
                KeyCode::Enter => {
                    self.mode = Mode::Normal;
                    self.search = text.trim().to_string();
                    self.refilter()
                }
                KeyCode::Esc => {
                    self.mode = Mode::Normal;
                    Vec::new()
                }
                KeyCode::Backspace => {
                    text.pop();
                    self.mode = Mode::Search(text);
                    Vec::new()
                }
                KeyCode::Char(character) if !character.is_control() && text.len() < 200 => {
                    text.push(character);
                    self.mode = Mode::Search(text);
                    Vec::new()
                }
                _ => Vec::new(),
            },
            Mode::ConfirmCancel(id) => {
                self.mode = Mode::Normal;
                if matches!(key.code, KeyCode::Char('y' | 'Y')) {
                    self.notice = Some((format!("cancelling job {id}…"), false));
                    vec![Command::Cancel(id)]
                } else {
                    self.notice = Some((format!("job {id} left running"), false));
                    Vec::new()
                }
            }
            Mode::Normal => self.normal_key(key),
        }
    }

    fn normal_key(&mut self, key: KeyEvent) -> Vec<Command> {
        match key.code {
            KeyCode::Char('q') => vec![Command::Quit],
            KeyCode::Char('?') => {
                self.mode = Mode::Help;
                Vec::new()
            }
            KeyCode::Tab => {
                self.focus = match self.focus {
                    Focus::Jobs => Focus::Queues,
                    Focus::Queues => Focus::Jobs,
                };
                Vec::new()
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.step(-1);
                Vec::new()
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.step(1);
                Vec::new()
            }
            KeyCode::PageUp => {
                self.step(-10);
                Vec::new()
            }
            KeyCode::PageDown => {
                self.step(10);
                Vec::new()
            }
            KeyCode::Home | KeyCode::Char('g') => {
                self.step(-(LIST_LIMIT as i64));
                Vec::new()
            }
            KeyCode::End | KeyCode::Char('G') => {
                self.step(LIST_LIMIT as i64);
                Vec::new()
            }
            KeyCode::Enter => self.toggle_detail(),
            KeyCode::Esc => {
                if self.detail.take().is_some() {
                    vec![Command::UnsubscribeDetail]
                } else {
                    Vec::new()
                }
            }
            KeyCode::Char('/') => {
                self.mode = Mode::Search(self.search.clone());
                Vec::new()
            }
            KeyCode::Char('s') => {
                let at = STATUS_FILTERS
                    .iter()
                    .position(|filter| *filter == self.status_filter)
                    .unwrap_or(0);
                self.status_filter = STATUS_FILTERS[(at + 1) % STATUS_FILTERS.len()];
                self.refilter()
            }
            KeyCode::Char('c') => {
                match self.selected_row() {
                    Some(row) if !row.finished() => {
                        self.mode = Mode::ConfirmCancel(row.id.clone());
                    }
                    Some(row) => {
                        self.notice = Some((
                            format!("job {} already {}; nothing to cancel", row.id, row.status),
                            true,
                        ));
                    }
                    None => {}
                }
                Vec::new()
            }
            KeyCode::Char('r') => match self.selected_row() {
                Some(row) if row.finished() => vec![Command::Retry(row.id.clone())],
                Some(row) => {
                    self.notice = Some((
                        format!(
                            "job {} is {}; only a finished job is retried",
                            row.id, row.status
                        ),
                        true,
                    ));
                    Vec::new()
                }
                None => Vec::new(),
            },
            KeyCode::Char('p') => {
                let queue = match self.focus {
                    Focus::Queues => self.queues.get(self.queue_selected),
                    Focus::Jobs => self
                        .selected_row()
                        .and_then(|row| self.queues.iter().find(|queue| queue.name == row.queue)),
                };
                match queue {
                    Some(queue) => vec![Command::SetQueuePaused {
                        queue: queue.name.clone(),
                        paused: !queue.paused,
                    }],
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// Moves the selection of the focused pane by `by` rows.
    fn step(&mut self, by: i64) {
        let (count, current) = match self.focus {
            Focus::Jobs => (self.rows.len(), self.selected_index().unwrap_or(0)),
            Focus::Queues => (self.queues.len(), self.queue_selected),
        };
        if count == 0 {
            return;
        }
        let next = (current as i64 + by).clamp(0, count as i64 - 1) as usize;
        match self.focus {
            Focus::Jobs => self.selected = Some(self.rows[next].id.clone()),
            Focus::Queues => self.queue_selected = next,
        }
    }

    fn toggle_detail(&mut self) -> Vec<Command> {
        let Some(row) = self.selected_row().cloned() else {
            return Vec::new();
        };
        if self
            .detail
            .as_ref()
            .is_some_and(|detail| detail.id == row.id)
        {
            self.detail = None;
            return vec![Command::UnsubscribeDetail];
        }
        self.detail = Some(Detail {
            id: row.id.clone(),
            job: Some(row.clone()),
            ..Detail::default()
        });
        vec![Command::SubscribeDetail(row.id)]
    }

    /// The filter changed: a new list.
    fn refilter(&mut self) -> Vec<Command> {
        self.rows.clear();
        self.list_seq = None;
        self.selected = None;
        vec![Command::SubscribeList { since: None }]
    }
}

/// A job id as a number, for ordering; ids this server gave out always are.
fn id_number(id: &str) -> u64 {
    id.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(model: &mut Model, code: KeyCode) -> Vec<Command> {
        model.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn row(id: &str, status: &str) -> Row {
        Row {
            id: id.into(),
            job_type: "render".into(),
            queue: "default".into(),
            status: status.into(),
            progress: None,
            message: None,
            error: None,
            attempt: 1,
            max_attempts: 1,
            owner: None,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn log_text_is_kept_once_by_offset() {
        let mut detail = Detail::default();
        detail.append(0, "hello ");
        detail.append(3, "lo world\n");
        detail.append(0, "hello");
        detail.append(100, "gap");
        assert_eq!(detail.log, "hello world\n");
        assert_eq!(detail.log_end, 12);
        detail.append(12, "\u{1b}[31mred\u{1b}[0m\n");
        assert_eq!(detail.log, "hello world\nred\n", "escapes are removed");
    }

    #[test]
    fn a_row_leaves_a_status_filter_it_no_longer_matches() {
        let mut model = Model::new("x".into());
        model.status_filter = Some("running");
        model.update_row(row("2", "running"));
        model.update_row(row("1", "running"));
        model.update_row(row("3", "queued"));
        assert_eq!(
            model.rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["2", "1"]
        );
        model.update_row(row("2", "succeeded"));
        assert_eq!(model.rows.len(), 1);
        model.update_row(row("10", "running"));
        assert_eq!(model.rows[0].id, "10", "newest first, by number");
    }

    #[test]
    fn cancel_asks_first_and_only_for_an_unfinished_job() {
        let mut model = Model::new("x".into());
        model.rows = vec![row("7", "running"), row("6", "succeeded")];
        model.selected = Some("7".into());
        assert!(press(&mut model, KeyCode::Char('c')).is_empty());
        assert_eq!(model.mode, Mode::ConfirmCancel("7".into()));
        assert_eq!(
            press(&mut model, KeyCode::Char('y')),
            [Command::Cancel("7".into())]
        );
        press(&mut model, KeyCode::Down);
        assert_eq!(model.selected.as_deref(), Some("6"));
        assert!(press(&mut model, KeyCode::Char('c')).is_empty());
        assert_eq!(model.mode, Mode::Normal);
        assert!(model.notice.as_ref().is_some_and(|(_, error)| *error));
        assert_eq!(
            press(&mut model, KeyCode::Char('r')),
            [Command::Retry("6".into())]
        );
    }

    #[test]
    fn status_and_search_filters_subscribe_a_new_list() {
        let mut model = Model::new("x".into());
        assert_eq!(
            press(&mut model, KeyCode::Char('s')),
            [Command::SubscribeList { since: None }]
        );
        assert_eq!(model.status_filter, Some("running"));
        press(&mut model, KeyCode::Char('/'));
        for character in "render".chars() {
            press(&mut model, KeyCode::Char(character));
        }
        assert_eq!(
            press(&mut model, KeyCode::Enter),
            [Command::SubscribeList { since: None }]
        );
        assert_eq!(model.search, "render");
    }
}
