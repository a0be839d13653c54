//! `runway login URL`: checks a token against a server and saves both to the credentials file,
//! as the default server. The token, or a sign-in code that the server exchanges for a token of
//! this machine's own, comes on stdin (typed at a prompt, or piped), never as an argument,
//! where other users of the machine could read it. `runway dashboard` prints a sign-in link.

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
    eprint!("Token or sign-in code for {url}: ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| CliError::new(exit::FAILED, format!("cannot read the token: {error}")))?;
    let answer = answer.trim().to_string();
    if answer.is_empty() {
        return Err(CliError::new(
            exit::USAGE,
            "nothing given; paste a token, or a sign-in code from `runway dashboard` run where \
             you are signed in",
        ));
    }
    let token = if answer.starts_with("rwc_") {
        // A code from a link or `runway dashboard`: spent for a token of this machine's own.
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_else(|| "another machine".into());
        Client::new(&url, None)
            .token_from_code(&answer, &format!("runway login on {host}"))
            .await?
            .secret
    } else {
        answer
    };
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

/// `runway dashboard`: a link that signs a browser in as the CLI's user, once, within minutes.
/// Its code also works for `runway login` on another machine.
pub async fn dashboard(connection: &crate::cli::Connection) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    let made = client.signin_code().await?;
    output::print_line(&format!("{}/#code={}", client.base_url(), made.code))?;
    eprintln!(
        "runway: the link signs in as `{}` once, until {}; or give its code to `runway login`",
        made.user.name,
        output::when(made.expires_at)
    );
    Ok(exit::OK)
}
