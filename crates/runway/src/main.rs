//! The `runway` binary: the server (`runway serve`) and the CLI that talks to it.
//! `main` maps every error to a documented exit code; a closed stdout (`| head`) is success.

mod cli;
mod commands;
mod credentials;
mod exit;
mod output;
mod top;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) if error.code == exit::OK => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("runway: {}", error.message);
            ExitCode::from(error.code)
        }
    }
}

async fn run(cli: Cli) -> Result<u8, CliError> {
    let connection = &cli.connection;
    match cli.command {
        Command::Serve(args) => commands::serve::run(args).await,
        Command::Add(args) => commands::add::run(connection, args).await,
        Command::Ls(args) => commands::jobs::ls(connection, args).await,
        Command::Show(args) => commands::jobs::show(connection, args).await,
        Command::Logs(args) => commands::logs::run(connection, args).await,
        Command::Follow(args) => {
            let client = commands::client(connection)?;
            commands::follow::follow(&client, &args.id).await
        }
        Command::Wait(args) => commands::wait::run(connection, args).await,
        Command::Cancel(args) => commands::jobs::cancel(connection, args).await,
        Command::Retry(args) => commands::jobs::retry(connection, args).await,
        Command::Artifacts(args) => commands::artifacts::run(connection, args).await,
        Command::Rm(args) => commands::jobs::rm(connection, args).await,
        Command::Queue(command) => commands::queue::run(connection, command).await,
        Command::Trigger(command) => commands::trigger::run(connection, command).await,
        Command::User(command) => commands::users::user(connection, command).await,
        Command::Token(command) => commands::users::token(connection, command).await,
        Command::Login(args) => commands::login::run(args).await,
        Command::Dashboard => commands::login::dashboard(connection).await,
        Command::Top => top::run(connection).await,
        Command::Backup(args) => commands::backup::run(args),
        Command::Completions { shell } => commands::shell::completions(shell),
        Command::Man => commands::shell::man(),
        Command::Types(args) => commands::jobs::types(connection, args).await,
        Command::Watch(args) => commands::watch::run(args).await,
    }
}
