//! `runway backup FILE`: a consistent copy of the server's database, taken while it runs.

use std::collections::HashMap;

use runway_core::config::{Config, Overrides};

use crate::cli::BackupArgs;
use crate::exit::{self, CliError};
use crate::output;

pub fn run(args: BackupArgs) -> Result<u8, CliError> {
    // The data directory as `runway serve` finds it: --data, RUNWAY_DATA, the config file.
    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    let overrides = Overrides {
        listen: None,
        data_dir: args.data,
        database: None,
    };
    let config = Config::load(args.config.as_deref(), &env, &overrides)
        .map_err(|error| CliError::new(exit::CONFIG, error.to_string()))?;
    if config.server.database.is_some() {
        return Err(CliError::new(
            exit::USAGE,
            "runway backup copies the SQLite database, and this server keeps its state in \
             PostgreSQL (server.database or RUNWAY_DATABASE): back that up with pg_dump"
                .to_string(),
        ));
    }
    let data_dir = &config.server.data_dir;
    let bytes = runway_sqlite::backup(data_dir, &args.file)
        .map_err(|error| CliError::new(exit::FAILED, error.to_string()))?;
    output::print_line(&format!(
        "runway: backed up {} to {} ({bytes} bytes); artifacts stay in {}",
        data_dir.join(runway_sqlite::DATABASE_FILE).display(),
        args.file.display(),
        data_dir.join("artifacts").display()
    ))?;
    Ok(exit::OK)
}
