//! Users, tokens and browser sessions on PostgreSQL (core's `UserStore`). A removed user keeps
//! its row, so its id is never reused; its tokens and their sessions go in the same write.

use async_trait::async_trait;
use runway_core::clock::{Timestamp, micros_to_timestamp};
use runway_core::store::StoreError;
use runway_core::users::{
    Guarded, Holder, Role, TokenRecord, User, UserId, UserStore, removal_refused,
    revocation_refused,
};
use tokio_postgres::Row;

use crate::jobs::corrupt;
use crate::rows::micros;
use crate::store::{Commit, PgError, PgStore, Tx};

const USER_COLUMNS: &str = "u.id, u.name, u.role, u.created_at";
const TOKEN_COLUMNS: &str = "t.id, t.prefix, t.hash, t.user_id, t.name, t.created_at, t.expires_at";

/// A user from [`USER_COLUMNS`] starting at column `at`.
fn user_at(row: &Row, at: usize) -> Result<User, PgError> {
    let role: String = row.try_get(at + 2)?;
    Ok(User {
        id: UserId(row.try_get(at)?),
        name: row.try_get(at + 1)?,
        role: role.parse().map_err(PgError::Corrupt)?,
        created_at: micros_to_timestamp(row.try_get(at + 3)?),
    })
}

fn token(row: &Row) -> Result<TokenRecord, PgError> {
    Ok(TokenRecord {
        id: row.try_get(0)?,
        prefix: row.try_get(1)?,
        hash: row.try_get(2)?,
        user: UserId(row.try_get(3)?),
        name: row.try_get(4)?,
        created_at: micros_to_timestamp(row.try_get(5)?),
        expires_at: row.try_get::<_, Option<i64>>(6)?.map(micros_to_timestamp),
    })
}

/// A token from [`TOKEN_COLUMNS`] and its user from [`USER_COLUMNS`] after them.
fn holder(row: &Row) -> Result<Holder, PgError> {
    Ok(Holder {
        token: token(row)?,
        user: user_at(row, 7)?,
    })
}

/// Locks every admin's row and counts them: removals and revocations that could leave no admin
/// (or no admin token) take turns, and each sees what the one before did.
fn lock_admins(tx: &Tx) -> Result<usize, PgError> {
    Ok(tx
        .query(
            "SELECT id FROM users WHERE role = 'admin' AND removed_at IS NULL FOR UPDATE",
            &[],
        )?
        .len())
}

fn active_user(tx: &Tx, id: UserId) -> Result<Option<User>, PgError> {
    tx.query_opt(
        &format!("SELECT {USER_COLUMNS} FROM users u WHERE id = $1 AND removed_at IS NULL"),
        &[&id.0],
    )?
    .map(|row| user_at(&row, 0))
    .transpose()
}

/// Expired tokens are no use to anyone: they go, with their sessions, as others change.
fn delete_expired_tokens(tx: &Tx, now: Timestamp) -> Result<(), PgError> {
    tx.execute(
        "DELETE FROM web_sessions WHERE token_id IN
             (SELECT id FROM tokens WHERE expires_at <= $1)",
        &[&micros(now)],
    )?;
    tx.execute("DELETE FROM tokens WHERE expires_at <= $1", &[&micros(now)])?;
    Ok(())
}

fn insert_token(tx: &Tx, token: &TokenRecord) -> Result<TokenRecord, PgError> {
    let id: i64 = tx
        .query_one(
            "INSERT INTO tokens (prefix, hash, user_id, name, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &token.prefix,
                &token.hash,
                &token.user.0,
                &token.name,
                &micros(token.created_at),
                &token.expires_at.map(micros),
            ],
        )?
        .get(0);
    Ok(TokenRecord {
        id,
        ..token.clone()
    })
}

#[async_trait]
impl UserStore for PgStore {
    async fn user_insert(
        &self,
        name: &str,
        role: Role,
        first_token: TokenRecord,
        now: Timestamp,
    ) -> Result<Option<(User, TokenRecord)>, StoreError> {
        let name = name.to_string();
        self.write(Commit::Synced, move |tx| {
            let Some(row) = tx.query_opt(
                "INSERT INTO users (name, role, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) WHERE removed_at IS NULL DO NOTHING
                 RETURNING id",
                &[&name, &role.as_str(), &micros(now)],
            )?
            else {
                return Ok(None);
            };
            let user = User {
                id: UserId(row.get(0)),
                name: name.clone(),
                role,
                created_at: now,
            };
            let token = insert_token(
                tx,
                &TokenRecord {
                    user: user.id,
                    ..first_token.clone()
                },
            )?;
            Ok(Some((user, token)))
        })
        .await
    }

    async fn user_list(&self) -> Result<Vec<User>, StoreError> {
        self.rows(
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE removed_at IS NULL ORDER BY name"),
            &[],
        )
        .await?
        .iter()
        .map(|row| user_at(row, 0))
        .collect::<Result<_, _>>()
        .map_err(corrupt)
    }

    async fn user_find(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.rows(
            &format!("SELECT {USER_COLUMNS} FROM users u WHERE name = $1 AND removed_at IS NULL"),
            &[&name],
        )
        .await?
        .first()
        .map(|row| user_at(row, 0))
        .transpose()
        .map_err(corrupt)
    }

    async fn user_remove(&self, id: UserId, now: Timestamp) -> Result<Guarded, StoreError> {
        self.write(Commit::Synced, move |tx| {
            let admins = lock_admins(tx)?;
            let Some(user) = active_user(tx, id)? else {
                return Ok(Guarded::NotFound);
            };
            if let Some(why) = removal_refused(&user, admins) {
                return Ok(Guarded::Refused(why));
            }
            tx.execute(
                "UPDATE users SET removed_at = $2 WHERE id = $1",
                &[&id.0, &micros(now)],
            )?;
            tx.execute(
                "DELETE FROM web_sessions
                 WHERE token_id IN (SELECT id FROM tokens WHERE user_id = $1)",
                &[&id.0],
            )?;
            tx.execute("DELETE FROM tokens WHERE user_id = $1", &[&id.0])?;
            tx.execute("DELETE FROM signin_codes WHERE user_id = $1", &[&id.0])?;
            Ok(Guarded::Done)
        })
        .await
    }

    async fn token_insert(&self, token: TokenRecord) -> Result<TokenRecord, StoreError> {
        self.write(Commit::Synced, move |tx| {
            delete_expired_tokens(tx, token.created_at)?;
            insert_token(tx, &token)
        })
        .await
    }

    async fn token_find(&self, prefix: &str) -> Result<Option<Holder>, StoreError> {
        self.rows(
            &format!(
                "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS}
                 FROM tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.prefix = $1 AND u.removed_at IS NULL"
            ),
            &[&prefix],
        )
        .await?
        .first()
        .map(holder)
        .transpose()
        .map_err(corrupt)
    }

    async fn token_list(&self, user: Option<UserId>) -> Result<Vec<TokenRecord>, StoreError> {
        self.rows(
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens t
                 WHERE $1::bigint IS NULL OR t.user_id = $1 ORDER BY t.id"
            ),
            &[&user.map(|user| user.0)],
        )
        .await?
        .iter()
        .map(token)
        .collect::<Result<_, _>>()
        .map_err(corrupt)
    }

    async fn token_delete(&self, id: i64, now: Timestamp) -> Result<Guarded, StoreError> {
        self.write(Commit::Synced, move |tx| {
            let admins = lock_admins(tx)?;
            delete_expired_tokens(tx, now)?;
            let Some(row) = tx.query_opt(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.id = $1"),
                &[&id],
            )?
            else {
                return Ok(Guarded::NotFound);
            };
            let token = token(&row)?;
            let Some(owner) = active_user(tx, token.user)? else {
                return Ok(Guarded::NotFound);
            };
            let live: i64 = tx
                .query_one(
                    "SELECT count(*) FROM tokens
                     WHERE user_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
                    &[&owner.id.0, &micros(now)],
                )?
                .get(0);
            if let Some(why) = revocation_refused(&token, &owner, admins, live as usize) {
                return Ok(Guarded::Refused(why));
            }
            tx.execute("DELETE FROM web_sessions WHERE token_id = $1", &[&id])?;
            tx.execute("DELETE FROM tokens WHERE id = $1", &[&id])?;
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
        self.write(Commit::Synced, move |tx| {
            // Expired sessions go as new ones come.
            tx.execute(
                "DELETE FROM web_sessions WHERE expires_at <= $1",
                &[&micros(now)],
            )?;
            tx.execute(
                "INSERT INTO web_sessions (hash, token_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[&hash, &token_id, &micros(now), &micros(expires_at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn web_session_find(
        &self,
        hash: Vec<u8>,
        now: Timestamp,
    ) -> Result<Option<Holder>, StoreError> {
        self.rows(
            &format!(
                "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS}
                 FROM web_sessions s JOIN tokens t ON t.id = s.token_id
                     JOIN users u ON u.id = t.user_id
                 WHERE s.hash = $1 AND s.expires_at > $2 AND u.removed_at IS NULL"
            ),
            &[&hash, &micros(now)],
        )
        .await?
        .first()
        .map(holder)
        .transpose()
        .map_err(corrupt)
    }

    async fn web_session_delete(&self, hash: Vec<u8>) -> Result<bool, StoreError> {
        self.write(Commit::Synced, move |tx| {
            Ok(tx.execute("DELETE FROM web_sessions WHERE hash = $1", &[&hash])? > 0)
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
        self.write(Commit::Synced, move |tx| {
            tx.execute(
                "DELETE FROM signin_codes WHERE expires_at <= $1",
                &[&micros(now)],
            )?;
            tx.execute(
                "INSERT INTO signin_codes (hash, user_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[&hash, &user.0, &micros(now), &micros(expires_at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn signin_code_find(
        &self,
        hash: Vec<u8>,
        now: Timestamp,
    ) -> Result<Option<(User, Timestamp)>, StoreError> {
        self.rows(
            &format!(
                "SELECT {USER_COLUMNS}, c.expires_at
                 FROM signin_codes c JOIN users u ON u.id = c.user_id
                 WHERE c.hash = $1 AND c.used_at IS NULL AND c.expires_at > $2
                   AND u.removed_at IS NULL"
            ),
            &[&hash, &micros(now)],
        )
        .await?
        .first()
        .map(|row| -> Result<_, PgError> {
            Ok((user_at(row, 0)?, micros_to_timestamp(row.try_get(4)?)))
        })
        .transpose()
        .map_err(corrupt)
    }

    async fn signin_code_use(
        &self,
        hash: Vec<u8>,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        self.write(Commit::Synced, move |tx| {
            let Some(row) = tx.query_opt(
                "UPDATE signin_codes SET used_at = $2
                 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
                 RETURNING user_id",
                &[&hash, &micros(now)],
            )?
            else {
                return Ok(None);
            };
            let user: i64 = row.get(0);
            tx.query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE id = $1 AND removed_at IS NULL"),
                &[&user],
            )?
            .map(|row| user_at(&row, 0))
            .transpose()
        })
        .await
    }
}
