//! Users, their tokens and browser sessions, with the rules of who may manage what: an admin
//! manages every user and token, a member only its own tokens; the last admin and its last
//! token stay. The server makes the secrets and their hashes; the app keeps only records.

use crate::app::App;
use crate::clock::Timestamp;
use crate::error::Error;
use crate::store::StoreError;
use crate::users::{Guarded, Holder, Role, TokenRecord, User, UserId, check_user_name};

/// The name of the user a fresh server makes for its first admin token.
pub const FIRST_ADMIN: &str = "admin";

fn admins_only(what: &str) -> Error {
    Error::Forbidden {
        message: format!("only an admin may {what}"),
    }
}

impl App {
    /// Makes the first admin (user `admin`) with `token` when the server has no user yet;
    /// false when it has one (another server sharing the database may have just made it).
    pub async fn ensure_first_admin(&self, token: TokenRecord) -> Result<bool, StoreError> {
        let store = self.store();
        if !store.user_list().await?.is_empty() {
            return Ok(false);
        }
        Ok(store
            .user_insert(FIRST_ADMIN, Role::Admin, token, self.now())
            .await?
            .is_some())
    }

    /// Adds a user with its first token (`token.user` is set here).
    pub async fn user_add(
        &self,
        caller: &User,
        name: &str,
        role: Role,
        token: TokenRecord,
    ) -> Result<(User, TokenRecord), Error> {
        if caller.role != Role::Admin {
            return Err(admins_only("add users"));
        }
        check_user_name(name).map_err(|message| Error::InvalidField {
            field: "name".into(),
            message,
        })?;
        self.store()
            .user_insert(name, role, token, self.now())
            .await?
            .ok_or_else(|| Error::Conflict {
                message: format!("a user named `{name}` exists; pick another name"),
            })
    }

    /// Every user, by name.
    pub async fn users(&self, caller: &User) -> Result<Vec<User>, Error> {
        if caller.role != Role::Admin {
            return Err(admins_only("list users"));
        }
        Ok(self.store().user_list().await?)
    }

    /// Removes a user with its tokens and sessions; its jobs stay, still showing it as owner.
    /// The last admin cannot be removed (the store checks it inside the write).
    pub async fn user_remove(&self, caller: &User, name: &str) -> Result<User, Error> {
        if caller.role != Role::Admin {
            return Err(admins_only("remove users"));
        }
        let user = self
            .store()
            .user_find(name)
            .await?
            .ok_or_else(|| Error::UnknownUser { name: name.into() })?;
        match self.store().user_remove(user.id, self.now()).await? {
            Guarded::Done => Ok(user),
            Guarded::NotFound => Err(Error::UnknownUser { name: name.into() }),
            Guarded::Refused(message) => Err(Error::Conflict { message }),
        }
    }

    /// Creates a token for `for_user` (a member: only itself) with the caller's record of it.
    pub async fn token_create(
        &self,
        caller: &User,
        for_user: Option<&str>,
        token: TokenRecord,
    ) -> Result<(User, TokenRecord), Error> {
        let user = self.token_user(caller, for_user).await?;
        let token = self
            .store()
            .token_insert(TokenRecord {
                user: user.id,
                ..token
            })
            .await?;
        Ok((user, token))
    }

    /// The tokens of `for_user`, or, without it, the caller's (a member) or everyone's (an
    /// admin), each with its user's name.
    pub async fn tokens(
        &self,
        caller: &User,
        for_user: Option<&str>,
    ) -> Result<Vec<(TokenRecord, String)>, Error> {
        let user = match (for_user, caller.role) {
            (None, Role::Admin) => None,
            _ => Some(self.token_user(caller, for_user).await?),
        };
        let tokens = self
            .store()
            .token_list(user.as_ref().map(|user| user.id))
            .await?;
        let names: std::collections::HashMap<UserId, String> = match user {
            Some(user) => [(user.id, user.name)].into(),
            None => self
                .store()
                .user_list()
                .await?
                .into_iter()
                .map(|user| (user.id, user.name))
                .collect(),
        };
        Ok(tokens
            .into_iter()
            .map(|token| {
                let name = names.get(&token.user).cloned().unwrap_or_default();
                (token, name)
            })
            .collect())
    }

    /// Revokes a token and ends its browser sessions. A member may revoke only its own; the
    /// last admin's last valid token stays, so the server keeps a way in (the store checks it
    /// inside the write).
    pub async fn token_revoke(&self, caller: &User, id: i64) -> Result<TokenRecord, Error> {
        let mine = match caller.role {
            Role::Admin => None,
            Role::Member => Some(caller.id),
        };
        let token = self
            .store()
            .token_list(mine)
            .await?
            .into_iter()
            .find(|token| token.id == id)
            .ok_or(Error::UnknownToken { id })?;
        match self.store().token_delete(id, self.now()).await? {
            Guarded::Done => Ok(token),
            Guarded::NotFound => Err(Error::UnknownToken { id }),
            Guarded::Refused(message) => Err(Error::Conflict { message }),
        }
    }

    /// The user a token is made for: the caller, or the named user when the caller is an
    /// admin.
    async fn token_user(&self, caller: &User, for_user: Option<&str>) -> Result<User, Error> {
        match for_user {
            None => Ok(caller.clone()),
            Some(name) if name == caller.name => Ok(caller.clone()),
            Some(_) if caller.role != Role::Admin => {
                Err(admins_only("manage another user's tokens"))
            }
            Some(name) => self
                .store()
                .user_find(name)
                .await?
                .ok_or_else(|| Error::UnknownUser { name: name.into() }),
        }
    }

    /// The token whose public prefix is `prefix`, with its user.
    pub async fn token_find(&self, prefix: &str) -> Result<Option<Holder>, StoreError> {
        self.store().token_find(prefix).await
    }

    /// Keeps a browser session (the hash of its cookie) of a token until `expires_at`.
    pub async fn web_session_insert(
        &self,
        hash: Vec<u8>,
        token_id: i64,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.store()
            .web_session_insert(hash, token_id, self.now(), expires_at)
            .await
    }

    /// The token and user of an unexpired browser session.
    pub async fn web_session_find(&self, hash: Vec<u8>) -> Result<Option<Holder>, StoreError> {
        self.store().web_session_find(hash, self.now()).await
    }

    /// Ends a browser session; false when there was none.
    pub async fn web_session_delete(&self, hash: Vec<u8>) -> Result<bool, StoreError> {
        self.store().web_session_delete(hash).await
    }

    /// Keeps a sign-in code (its hash) for `user` for `server.signin_code_ttl`; returns when
    /// it expires.
    pub async fn signin_code_insert(
        &self,
        hash: Vec<u8>,
        user: &User,
    ) -> Result<Timestamp, StoreError> {
        let now = self.now();
        let ttl = chrono::Duration::from_std(self.config().server.signin_code_ttl)
            .unwrap_or(chrono::Duration::minutes(10));
        let expires_at = now + ttl;
        self.store()
            .signin_code_insert(hash, user.id, now, expires_at)
            .await?;
        Ok(expires_at)
    }

    /// Whose session an unused code would start, and until when it may; it stays unused.
    pub async fn signin_code_find(
        &self,
        hash: Vec<u8>,
    ) -> Result<Option<(User, Timestamp)>, StoreError> {
        self.store().signin_code_find(hash, self.now()).await
    }

    /// Spends a code: its user, or `None` when it is unknown, used or expired.
    pub async fn signin_code_use(&self, hash: Vec<u8>) -> Result<Option<User>, StoreError> {
        self.store().signin_code_use(hash, self.now()).await
    }

    /// The admin a start's sign-in link is for: the oldest.
    pub async fn first_admin(&self) -> Result<Option<User>, StoreError> {
        Ok(self
            .store()
            .user_list()
            .await?
            .into_iter()
            .filter(|user| user.role == Role::Admin)
            .min_by_key(|user| user.id))
    }
}
