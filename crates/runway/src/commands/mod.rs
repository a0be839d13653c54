//! One file per subcommand.

pub mod add;
pub mod artifacts;
pub mod backup;
pub mod follow;
pub mod jobs;
pub mod login;
pub mod logs;
pub mod queue;
pub mod serve;
pub mod shell;
pub mod trigger;
pub mod users;
pub mod wait;
pub mod watch;

use runway_client::Client;

use crate::cli::Connection;
use crate::credentials;
use crate::exit::{self, CliError};

pub const DEFAULT_URL: &str = "http://127.0.0.1:7869";

/// A client from flags, the environment or the credentials file, in that order: the server
/// `--server` names there, else its default. The stored token goes only to the stored URL:
/// pointing the CLI at another server never sends it there.
pub fn client(connection: &Connection) -> Result<Client, CliError> {
    let stored = credentials::read().map_err(|message| CliError::new(exit::FAILED, message))?;
    let stored = stored
        .pick(connection.server.as_deref())
        .map_err(|message| CliError::new(exit::USAGE, message))?
        .cloned();
    let url = connection
        .url
        .clone()
        .or_else(|| stored.as_ref().map(|stored| stored.url.clone()))
        .unwrap_or_else(|| DEFAULT_URL.to_string());
    let same_server =
        |stored_url: &str| stored_url.trim_end_matches('/') == url.trim_end_matches('/');
    let token = connection.token.clone().or_else(|| {
        stored
            .filter(|stored| same_server(&stored.url))
            .map(|stored| stored.token)
    });
    Ok(Client::new(&url, token))
}
