use std::io::Write;
use std::time::Duration;

use crate::cli::{Connection, LogsArgs};
use crate::exit::{self, CliError};
use crate::output;

/// How often `logs -f` asks for more while the job runs.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

pub async fn run(connection: &Connection, args: LogsArgs) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    let mut offset = 0;
    loop {
        let chunk = client.log(&args.id, offset).await?;
        if !chunk.data.is_empty() {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(output::sanitize(&chunk.data).as_bytes())?;
            stdout.flush()?;
        }
        let advanced = chunk.next_offset > offset;
        offset = chunk.next_offset;
        if chunk.complete {
            return Ok(exit::OK);
        }
        if advanced {
            continue;
        }
        if !args.follow {
            return Ok(exit::OK);
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}
