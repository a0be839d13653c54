//! The schema's migrations, embedded in the binary and run in order at start. All of them run
//! in one transaction that first takes an advisory lock: servers starting at once wait for one
//! another, and the second finds the work done. A database a newer runway migrated is refused.

use tokio_postgres::Client;

/// Migrations in order; the index + 1 is the version.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_users.sql"),
    include_str!("../migrations/0003_log_marks.sql"),
    include_str!("../migrations/0004_retries.sql"),
    include_str!("../migrations/0005_held_writes.sql"),
    include_str!("../migrations/0006_counts_in_store.sql"),
    include_str!("../migrations/0007_search_text_apart.sql"),
];

/// The advisory lock migrations hold: "runway" in ASCII.
const MIGRATION_LOCK: i64 = 0x7275_6e77_6179;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the database is at schema version {found}, newer than this runway knows ({known}); run \
         the runway that migrated it, or a newer one"
    )]
    Newer { found: i32, known: i32 },
    #[error("migration {version} failed: {source}")]
    Failed {
        version: i32,
        source: tokio_postgres::Error,
    },
    #[error("cannot read or record the schema version: {0}")]
    Version(#[from] tokio_postgres::Error),
}

pub(crate) async fn migrate(client: &mut Client) -> Result<(), MigrateError> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS runway_schema (
                 version    integer     PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
    let found: i32 = transaction
        .query_one("SELECT coalesce(max(version), 0) FROM runway_schema", &[])
        .await?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if found > known {
        return Err(MigrateError::Newer { found, known });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i32 + 1;
        transaction
            .batch_execute(migration)
            .await
            .map_err(|source| MigrateError::Failed { version, source })?;
        transaction
            .execute(
                "INSERT INTO runway_schema (version) VALUES ($1)",
                &[&version],
            )
            .await?;
        tracing::info!(version, "migrated the database");
    }
    transaction.commit().await?;
    Ok(())
}
