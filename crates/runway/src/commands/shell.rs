//! What a shell and `man` need: completion scripts and the manual page, both generated from
//! the command line's declaration, so they never drift from it.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::{self, CliError};

pub fn completions(shell: clap_complete::Shell) -> Result<u8, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "runway", &mut script);
    print(&script, "the completion script")
}

pub fn man() -> Result<u8, CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|error| {
            CliError::new(exit::FAILED, format!("cannot render the manual: {error}"))
        })?;
    print(&page, "the manual")
}

/// Writes `bytes` to stdout; a reader that stopped early (`| head`) is not an error.
fn print(bytes: &[u8], what: &str) -> Result<u8, CliError> {
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => Ok(exit::OK),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::OK),
        Err(error) => Err(CliError::new(
            exit::FAILED,
            format!("cannot print {what}: {error}"),
        )),
    }
}
