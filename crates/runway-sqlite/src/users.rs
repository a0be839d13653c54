//! Users, tokens and browser sessions as SQL (core's `UserStore`). A removed user keeps its
//! row, so its id is never reused; its tokens and their sessions go in the same write.

use async_trait::async_trait;
use runway_core::clock::{Timestamp, micros_to_timestamp};
use runway_core::store::StoreError;
use runway_core::users::{
    Guarded, Holder, Role, TokenRecord, User, UserId, UserStore, removal_refused,
    revocation_refused,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::SqliteStore;
use crate::writer::Commit;

const USER_COLUMNS: &str = "u.id, u.name, u.role, u.created_at";
const TOKEN_COLUMNS: &str = "t.id, t.prefix, t.hash, t.user_id, t.name, t.created_at, t.expires_at";

fn micros(at: Timestamp) -> i64 {
    at.timestamp_micros()
}

/// A user from [`USER_COLUMNS`] starting at column `at`.
fn user_from_row(row: &Row, at: usize) -> rusqlite::Result<User> {
    let role: String = row.get(at + 2)?;
    Ok(User {
        id: UserId(row.get(at)?),
        name: row.get(at + 1)?,
        role: role.parse().map_err(|message: String| {
            rusqlite::Error::FromSqlConversionFailure(
                at + 2,
                rusqlite::types::Type::Text,
                message.into(),
            )
        })?,
        created_at: micros_to_timestamp(row.get(at + 3)?),
    })
}

fn token_from_row(row: &Row) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.get(0)?,
        prefix: row.get(1)?,
        hash: row.get(2)?,
        user: UserId(row.get(3)?),
        name: row.get(4)?,
        created_at: micros_to_timestamp(row.get(5)?),
        expires_at: row.get::<_, Option<i64>>(6)?.map(micros_to_timestamp),
    })
}

/// A token from [`TOKEN_COLUMNS`] and its user from [`USER_COLUMNS`] after them.
fn holder_from_row(row: &Row) -> rusqlite::Result<Holder> {
    Ok(Holder {
        token: token_from_row(row)?,
        user: user_from_row(row, 7)?,
    })
}

fn active_user(connection: &Connection, id: UserId) -> rusqlite::Result<Option<User>> {
    connection
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE id = ?1 AND removed_at IS NULL"
        ))?
        .query_row([id.0], |row| user_from_row(row, 0))
        .optional()
}

fn admin_count(connection: &Connection) -> rusqlite::Result<usize> {
    let admins: i64 = connection
        .prepare_cached("SELECT count(*) FROM users WHERE role = 'admin' AND removed_at IS NULL")?
        .query_row([], |row| row.get(0))?;
    Ok(admins as usize)
}

/// Expired tokens are no use to anyone: they go, with their sessions, as others change.
fn delete_expired_tokens(connection: &Connection, now: Timestamp) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "DELETE FROM web_sessions WHERE token_id IN
                 (SELECT id FROM tokens WHERE expires_at <= ?1)",
        )?
        .execute([micros(now)])?;
    connection
        .prepare_cached("DELETE FROM tokens WHERE expires_at <= ?1")?
        .execute([micros(now)])?;
    Ok(())
}

fn insert_token(connection: &Connection, token: TokenRecord) -> rusqlite::Result<TokenRecord> {
    let id = connection
        .prepare_cached(
            "INSERT INTO tokens (prefix, hash, user_id, name, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )?
        .query_row(
            params![
                token.prefix,
                token.hash,
                token.user.0,
                token.name,
                micros(token.created_at),
                token.expires_at.map(micros),
            ],
            |row| row.get(0),
        )?;
    Ok(TokenRecord { id, ..token })
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn user_insert(
        &self,
        name: &str,
        role: Role,
        first_token: TokenRecord,
        now: Timestamp,
    ) -> Result<Option<(User, TokenRecord)>, StoreError> {
        let name = name.to_string();
        self.writer
            .write(Commit::Synced, move |connection| {
                let id: Option<i64> = connection
                    .prepare_cached(
                        "INSERT INTO users (name, role, created_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) WHERE removed_at IS NULL DO NOTHING
                         RETURNING id",
                    )?
                    .query_row(params![name, role.as_str(), micros(now)], |row| row.get(0))
                    .optional()?;
                let Some(id) = id else {
                    return Ok(None);
                };
                let user = User {
                    id: UserId(id),
                    name,
                    role,
                    created_at: now,
                };
                let token = insert_token(
                    connection,
                    TokenRecord {
                        user: user.id,
                        ..first_token
                    },
                )?;
                Ok(Some((user, token)))
            })
            .await
    }

    async fn user_list(&self) -> Result<Vec<User>, StoreError> {
        self.readers
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS} FROM users u WHERE removed_at IS NULL ORDER BY name"
                    ))?
                    .query_map([], |row| user_from_row(row, 0))?
                    .collect()
            })
            .await
    }

    async fn user_find(&self, name: &str) -> Result<Option<User>, StoreError> {
        let name = name.to_string();
        self.readers
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS} FROM users u WHERE name = ?1 AND removed_at IS NULL"
                    ))?
                    .query_row([name], |row| user_from_row(row, 0))
                    .optional()
            })
            .await
    }

    async fn user_remove(&self, id: UserId, now: Timestamp) -> Result<Guarded, StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                // The one writer serializes removals: what is read here stays true.
                let Some(user) = active_user(connection, id)? else {
                    return Ok(Guarded::NotFound);
                };
                if let Some(why) = removal_refused(&user, admin_count(connection)?) {
                    return Ok(Guarded::Refused(why));
                }
                connection
                    .prepare_cached("UPDATE users SET removed_at = ?2 WHERE id = ?1")?
                    .execute(params![id.0, micros(now)])?;
                connection
                    .prepare_cached(
                        "DELETE FROM web_sessions
                         WHERE token_id IN (SELECT id FROM tokens WHERE user_id = ?1)",
                    )?
                    .execute([id.0])?;
                connection
                    .prepare_cached("DELETE FROM tokens WHERE user_id = ?1")?
                    .execute([id.0])?;
                connection
                    .prepare_cached("DELETE FROM signin_codes WHERE user_id = ?1")?
                    .execute([id.0])?;
                Ok(Guarded::Done)
            })
            .await
    }

    async fn token_insert(&self, token: TokenRecord) -> Result<TokenRecord, StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                insert_token(connection, token)
            })
            .await
    }

    async fn token_find(&self, prefix: &str) -> Result<Option<Holder>, StoreError> {
        let prefix = prefix.to_string();
        self.readers
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS}
                         FROM tokens t JOIN users u ON u.id = t.user_id
                         WHERE t.prefix = ?1 AND u.removed_at IS NULL"
                    ))?
                    .query_row([prefix], holder_from_row)
                    .optional()
            })
            .await
    }

    async fn token_list(&self, user: Option<UserId>) -> Result<Vec<TokenRecord>, StoreError> {
        self.readers
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {TOKEN_COLUMNS} FROM tokens t
                         WHERE ?1 IS NULL OR t.user_id = ?1 ORDER BY t.id"
                    ))?
                    .query_map([user.map(|user| user.0)], token_from_row)?
                    .collect()
            })
            .await
    }

    async fn token_delete(&self, id: i64, now: Timestamp) -> Result<Guarded, StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                delete_expired_tokens(connection, now)?;
                let token = connection
                    .prepare_cached(&format!(
                        "SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.id = ?1"
                    ))?
                    .query_row([id], token_from_row)
                    .optional()?;
                let Some(token) = token else {
                    return Ok(Guarded::NotFound);
                };
                let Some(owner) = active_user(connection, token.user)? else {
                    return Ok(Guarded::NotFound);
                };
                let live: i64 = connection
                    .prepare_cached(
                        "SELECT count(*) FROM tokens
                         WHERE user_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                    )?
                    .query_row(params![owner.id.0, micros(now)], |row| row.get(0))?;
                let admins = admin_count(connection)?;
                if let Some(why) = revocation_refused(&token, &owner, admins, live as usize) {
                    return Ok(Guarded::Refused(why));
                }
                connection
                    .prepare_cached("DELETE FROM web_sessions WHERE token_id = ?1")?
                    .execute([id])?;
                connection
                    .prepare_cached("DELETE FROM tokens WHERE id = ?1")?
                    .execute([id])?;
                Ok(Guarded::Done)
            })
            .await
    }

    async fn web_session_insert(
        &self,
        hash: Vec<u8>,
        token_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                // Expired sessions go as new ones come.
                connection
                    .prepare_cached("DELETE FROM web_sessions WHERE expires_at <= ?1")?
                    .execute([micros(now)])?;
                connection
                    .prepare_cached(
                        "INSERT INTO web_sessions (hash, token_id, created_at, expires_at)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![hash, token_id, micros(now), micros(expires_at)])?;
                Ok(())
            })
            .await
    }

    async fn web_session_find(
        &self,
        hash: Vec<u8>,
        now: Timestamp,
    ) -> Result<Option<Holder>, StoreError> {
        self.readers
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS}
                         FROM web_sessions s JOIN tokens t ON t.id = s.token_id
                             JOIN users u ON u.id = t.user_id
                         WHERE s.hash = ?1 AND s.expires_at > ?2 AND u.removed_at IS NULL"
                    ))?
                    .query_row(params![hash, micros(now)], holder_from_row)
                    .optional()
            })
            .await
    }

    async fn web_session_delete(&self, hash: Vec<u8>) -> Result<bool, StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                let deleted = connection
                    .prepare_cached("DELETE FROM web_sessions WHERE hash = ?1")?
                    .execute([hash])?;
                Ok(deleted > 0)
            })
            .await
    }

    async fn signin_code_insert(
        &self,
        hash: Vec<u8>,
        user: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                connection
                    .prepare_cached("DELETE FROM signin_codes WHERE expires_at <= ?1")?
                    .execute([micros(now)])?;
                connection
                    .prepare_cached(
                        "INSERT INTO signin_codes (hash, user_id, created_at, expires_at)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![hash, user.0, micros(now), micros(expires_at)])?;
                Ok(())
            })
            .await
    }

    async fn signin_code_find(
        &self,
        hash: Vec<u8>,
        now: Timestamp,
    ) -> Result<Option<(User, Timestamp)>, StoreError> {
        self.readers
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS}, c.expires_at
                         FROM signin_codes c JOIN users u ON u.id = c.user_id
                         WHERE c.hash = ?1 AND c.used_at IS NULL AND c.expires_at > ?2
                           AND u.removed_at IS NULL"
                    ))?
                    .query_row(params![hash, micros(now)], |row| {
                        Ok((user_from_row(row, 0)?, micros_to_timestamp(row.get(4)?)))
                    })
                    .optional()
            })
            .await
    }

    async fn signin_code_use(
        &self,
        hash: Vec<u8>,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        self.writer
            .write(Commit::Synced, move |connection| {
                let user: Option<i64> = connection
                    .prepare_cached(
                        "UPDATE signin_codes SET used_at = ?2
                         WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2
                         RETURNING user_id",
                    )?
                    .query_row(params![hash, micros(now)], |row| row.get(0))
                    .optional()?;
                let Some(user) = user else {
                    return Ok(None);
                };
                connection
                    .prepare_cached(&format!(
                        "SELECT {USER_COLUMNS} FROM users u WHERE id = ?1 AND removed_at IS NULL"
                    ))?
                    .query_row([user], |row| user_from_row(row, 0))
                    .optional()
            })
            .await
    }
}
