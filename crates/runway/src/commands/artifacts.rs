//! `artifacts ID` lists a job's files; `artifacts get ID NAME` downloads one, streamed to a
//! new file (never over an existing one) or to stdout.

use std::io::Write;

use comfy_table::Cell;

use crate::cli::{ArtifactGetArgs, ArtifactsArgs, ArtifactsCommand, Connection, Format};
use crate::exit::{self, CliError};
use crate::output;

pub async fn run(connection: &Connection, args: ArtifactsArgs) -> Result<u8, CliError> {
    match (args.get, args.id) {
        (Some(ArtifactsCommand::Get(get)), _) => download(connection, get).await,
        (None, Some(id)) => list(connection, &id, args.output.format).await,
        (None, None) => Err(CliError::new(
            exit::USAGE,
            "name a job: `runway artifacts ID`, or `runway artifacts get ID NAME`",
        )),
    }
}

async fn list(connection: &Connection, id: &str, format: Format) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    let answer = client.artifacts(id).await?;
    match format {
        Format::Json => output::print_json(&answer.artifacts)?,
        Format::Table => {
            let mut table = output::table(&["NAME", "SIZE", "TYPE", "ATTEMPT", "SHA256"]);
            for artifact in &answer.artifacts {
                table.add_row(vec![
                    Cell::new(output::sanitize(&artifact.name)),
                    Cell::new(artifact.size),
                    Cell::new(output::sanitize(&artifact.content_type)),
                    Cell::new(artifact.attempt),
                    Cell::new(&artifact.sha256[..12.min(artifact.sha256.len())]),
                ]);
            }
            output::print_table(&table)?;
        }
    }
    Ok(exit::OK)
}

async fn download(connection: &Connection, args: ArtifactGetArgs) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    let target = args.file.clone().unwrap_or_else(|| {
        args.name
            .rsplit('/')
            .next()
            .unwrap_or(&args.name)
            .to_string()
    });
    let mut response = client.artifact(&args.id, &args.name).await?;
    let mut sink: Box<dyn Write> = if target == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|error| {
                CliError::new(
                    exit::USAGE,
                    format!("cannot write {target}: {error}; choose another file with -o FILE, or -o - for stdout"),
                )
            })?;
        Box::new(std::io::BufWriter::new(file))
    };
    loop {
        let chunk = response.chunk().await.map_err(|error| {
            CliError::new(
                exit::UNREACHABLE,
                format!("the download of {} broke off: {error}", args.name),
            )
        })?;
        let Some(chunk) = chunk else {
            break;
        };
        sink.write_all(&chunk)?;
    }
    sink.flush()?;
    Ok(exit::OK)
}
