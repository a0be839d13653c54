//! `runway login URL`: checks a token against a server and saves both to the credentials file,
//! as the default server. The token comes on stdin (typed at a prompt, or piped), never as an
//! argument, where other users of the machine could read it.

use std::io::BufRead;

use runway_client::Client;

use crate::cli::LoginArgs;
use crate::credentials::{self, Server};
use crate::exit::{self, CliError};
use crate::output;

pub async fn run(args: LoginArgs) -> Result<u8, CliError> {
    let url = args.url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(CliError::new(
            exit::USAGE,
            format!("`{url}` is not a server URL; write it as http://HOST:PORT or https://HOST"),
        ));
    }
    eprint!("Token for {url}: ");
    let mut token = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut token)
        .map_err(|error| CliError::new(exit::FAILED, format!("cannot read the token: {error}")))?;
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(CliError::new(
            exit::USAGE,
            "no token given; paste the token `runway serve` printed at its first start",
        ));
    }
    // A token the server refuses is never saved.
    Client::new(&url, Some(token.clone())).types().await?;
    let name = args.name.unwrap_or_else(|| credentials::name_for(&url));
    let path = credentials::save_as(&name, Server { url, token })
        .map_err(|message| CliError::new(exit::FAILED, message))?;
    output::print_line(&format!(
        "runway: saved server `{name}` to {}, the CLI's default",
        path.display()
    ))?;
    Ok(exit::OK)
}
