use std::io::Write;

use crate::cli::{Connection, Format, LogsArgs};
use crate::exit::{self, CliError};
use crate::output;

pub async fn run(connection: &Connection, args: LogsArgs) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    if args.follow {
        super::follow::follow_log(&client, &args.id, false).await?;
        return Ok(exit::OK);
    }
    let mut offset = 0;
    let mut whole = String::new();
    loop {
        let chunk = client.log(&args.id, offset).await?;
        if args.output.format == Format::Json {
            whole.push_str(&chunk.data);
        } else if !chunk.data.is_empty() {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(output::sanitize(&chunk.data).as_bytes())?;
            stdout.flush()?;
        }
        let advanced = chunk.next_offset > offset;
        offset = chunk.next_offset;
        if chunk.complete || !advanced {
            if args.output.format == Format::Json {
                output::print_json(&serde_json::json!({
                    "job_id": args.id,
                    "data": whole,
                    "size": offset,
                    "complete": chunk.complete,
                }))?;
            }
            return Ok(exit::OK);
        }
    }
}
