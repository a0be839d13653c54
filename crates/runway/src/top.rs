//! `runway top`: a terminal dashboard on the session WebSocket, for people who live in SSH
//! sessions. `model` holds what is shown and decides what keys and messages do, `view` draws
//! it; this loop carries keys, session messages and a clock tick into the model and the
//! model's commands out to the session and the REST API. A lost session is opened again, and
//! the job list resumes from where it was (`since`), as the web page does.

mod model;
mod view;

use std::time::Duration;

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use runway_api::session::{ClientMessage, JobQuery, ServerMessage};
use runway_client::{Client, ClientError, Session};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cli::Connection;
use crate::exit::{self, CliError};
use model::{Command, LIST_LIMIT, Model};

/// How often the queues' counts are read.
const QUEUES_EVERY: Duration = Duration::from_secs(2);
/// The longest wait between attempts to reconnect.
const MOST_BACKOFF: Duration = Duration::from_secs(10);

enum Input {
    Key(event::KeyEvent),
    Resize,
}

pub async fn run(connection: &Connection) -> Result<u8, CliError> {
    let client = crate::commands::client(connection)?;
    // A wrong server or token is said plainly, before the screen is taken over.
    client.me().await?;
    let mut terminal = ratatui::try_init().map_err(|error| {
        CliError::new(
            exit::FAILED,
            format!("`runway top` needs a terminal: {error}"),
        )
    })?;
    let result = TopLoop::new(client).run(&mut terminal).await;
    ratatui::restore();
    result
}

struct TopLoop {
    client: Client,
    model: Model,
    session: Option<Session>,
    requests: u64,
}

impl TopLoop {
    fn new(client: Client) -> TopLoop {
        let model = Model::new(client.base_url().to_string());
        TopLoop {
            client,
            model,
            session: None,
            requests: 0,
        }
    }

    async fn run(&mut self, terminal: &mut DefaultTerminal) -> Result<u8, CliError> {
        let mut inputs = read_terminal();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut reconnect_at = Instant::now();
        let mut backoff = Duration::from_secs(1);
        let mut queues_at = Instant::now();
        loop {
            if self.session.is_none() && Instant::now() >= reconnect_at {
                match self.connect().await {
                    Ok(()) => backoff = Duration::from_secs(1),
                    Err(error) => {
                        self.model.disconnected(error.to_string());
                        reconnect_at = Instant::now() + backoff;
                        backoff = (backoff * 2).min(MOST_BACKOFF);
                    }
                }
            }
            if Instant::now() >= queues_at {
                self.read_queues().await;
                queues_at = Instant::now() + QUEUES_EVERY;
            }
            terminal
                .draw(|frame| view::render(frame, &self.model, chrono::Utc::now()))
                .map_err(|error| {
                    CliError::new(exit::FAILED, format!("cannot draw the screen: {error}"))
                })?;
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(Input::Key(key)) => {
                        for command in self.model.key(key) {
                            if command == Command::Quit {
                                return Ok(exit::OK);
                            }
                            self.execute(command).await;
                        }
                    }
                    Some(Input::Resize) => {}
                    None => return Ok(exit::OK),
                },
                message = next_message(&mut self.session) => match message {
                    Some(Ok(message)) => self.model.apply(message),
                    Some(Err(error)) => self.lost(error.to_string(), &mut reconnect_at, backoff),
                    None => self.lost("the server closed the session".into(), &mut reconnect_at, backoff),
                },
                _ = tick.tick() => {}
            }
        }
    }

    fn lost(&mut self, why: String, reconnect_at: &mut Instant, backoff: Duration) {
        self.session = None;
        self.model.disconnected(why);
        *reconnect_at = Instant::now() + backoff;
    }

    /// Opens the session, greets, and subscribes what the model shows.
    async fn connect(&mut self) -> Result<(), ClientError> {
        let mut session = self.client.session().await?;
        session.send(&ClientMessage::Hello { token: None }).await?;
        self.session = Some(session);
        for command in self.model.resubscribe() {
            self.execute(command).await;
        }
        Ok(())
    }

    async fn read_queues(&mut self) {
        if let Ok(list) = self.client.queues().await {
            self.model.queues = list.queues;
            self.model.queue_selected = self
                .model
                .queue_selected
                .min(self.model.queues.len().saturating_sub(1));
        }
    }

    fn request_id(&mut self) -> String {
        self.requests += 1;
        format!("top-{}", self.requests)
    }

    async fn execute(&mut self, command: Command) {
        let message = match command {
            Command::SubscribeList { since } => ClientMessage::Subscribe {
                key: "jobs".into(),
                jobs: Some(JobQuery {
                    status: self
                        .model
                        .status_filter
                        .map(|status| vec![status.to_string()])
                        .unwrap_or_default(),
                    q: (!self.model.search.is_empty()).then(|| self.model.search.clone()),
                    limit: Some(LIST_LIMIT),
                    ..JobQuery::default()
                }),
                job: None,
                log: false,
                since,
                triggers: false,
            },
            Command::SubscribeDetail(id) => ClientMessage::Subscribe {
                key: "detail".into(),
                jobs: None,
                job: Some(id),
                log: true,
                since: None,
                triggers: false,
            },
            Command::UnsubscribeDetail => ClientMessage::Unsubscribe {
                key: "detail".into(),
            },
            Command::Cancel(job_id) => ClientMessage::Cancel {
                id: self.request_id(),
                job_id,
            },
            Command::Retry(job_id) => ClientMessage::Retry {
                id: self.request_id(),
                job_id,
            },
            Command::SetQueuePaused { queue, paused } => {
                let answer = if paused {
                    self.client.pause_queue(&queue).await
                } else {
                    self.client.resume_queue(&queue).await
                };
                self.model.notice = Some(match answer {
                    Ok(_) if paused => (format!("queue {queue} paused"), false),
                    Ok(_) => (format!("queue {queue} resumed"), false),
                    Err(error) => (crate::output::sanitize(&error.to_string()), true),
                });
                self.read_queues().await;
                return;
            }
            Command::Quit => return,
        };
        let Some(session) = self.session.as_mut() else {
            self.model.notice = Some(("not connected; try again once live".into(), true));
            return;
        };
        if let Err(error) = session.send(&message).await {
            self.session = None;
            self.model.disconnected(error.to_string());
        }
    }
}

/// The next session message; never, without a session.
async fn next_message(session: &mut Option<Session>) -> Option<Result<ServerMessage, ClientError>> {
    match session {
        Some(session) => session.next().await,
        None => std::future::pending().await,
    }
}

/// Keys and resizes, read on a thread of their own (the terminal read blocks).
fn read_terminal() -> mpsc::UnboundedReceiver<Input> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        loop {
            let input = match event::read() {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => Input::Key(key),
                Ok(Event::Resize(..)) => Input::Resize,
                Ok(_) => continue,
                Err(_) => return,
            };
            if sender.send(input).is_err() {
                return;
            }
        }
    });
    receiver
}
