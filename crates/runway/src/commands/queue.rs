use comfy_table::Cell;

use crate::cli::{Connection, Format, QueueCommand};
use crate::exit::{self, CliError};
use crate::output;

pub async fn run(connection: &Connection, command: QueueCommand) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    match command {
        QueueCommand::Ls(args) => {
            let queues = client.queues().await?.queues;
            match args.format {
                Format::Json => output::print_json(&queues)?,
                Format::Table => {
                    let mut table = output::table(&[
                        "QUEUE",
                        "STATE",
                        "CONCURRENCY",
                        "QUEUED",
                        "SCHEDULED",
                        "RUNNING",
                        "SUCCEEDED",
                        "FAILED",
                        "CANCELLED",
                    ]);
                    for queue in &queues {
                        table.add_row(vec![
                            Cell::new(&queue.name),
                            Cell::new(if queue.paused { "paused" } else { "active" }),
                            Cell::new(queue.concurrency),
                            Cell::new(queue.queued),
                            Cell::new(queue.scheduled),
                            Cell::new(queue.running),
                            Cell::new(queue.succeeded),
                            Cell::new(queue.failed),
                            Cell::new(queue.cancelled),
                        ]);
                    }
                    output::print_table(&table)?;
                }
            }
        }
        QueueCommand::Pause { name } => {
            client.pause_queue(&name).await?;
            output::print_line(&format!("queue {name} paused"))?;
        }
        QueueCommand::Resume { name } => {
            client.resume_queue(&name).await?;
            output::print_line(&format!("queue {name} resumed"))?;
        }
    }
    Ok(exit::OK)
}
