//! Who may use the server: users, each an admin or a member, their API tokens (only a hash
//! kept) and browser sessions, and what a user may see of the jobs (`Access`). Core decides the
//! rules (a valid name, the last admin stays, a member sees its own jobs); a store keeps the
//! records through [`UserStore`].

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::job::Job;
use crate::store::StoreError;

/// A user's number, never reused: a job's owner keeps it after the user is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a user may do: an admin everything; a member only submit, see and act on its own jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(format!("`{other}` is not a role; use admin or member")),
        }
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// Who submitted a job: kept on the job, so a member finds its own jobs and an admin sees
/// whose a job is, also after the user is gone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    pub id: UserId,
    pub name: String,
}

impl From<&User> for Owner {
    fn from(user: &User) -> Owner {
        Owner {
            id: user.id,
            name: user.name.clone(),
        }
    }
}

/// Which jobs a caller may see and act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Every job: an admin, or the server itself (a trigger, a running job's own token, which
    /// is checked against its subtree before it gets here).
    All,
    /// Only the jobs this user submitted (and the trees they grew).
    Own(UserId),
}

impl Access {
    /// What `user` may see.
    pub fn of(user: &User) -> Access {
        match user.role {
            Role::Admin => Access::All,
            Role::Member => Access::Own(user.id),
        }
    }

    pub fn sees(self, job: &Job) -> bool {
        match self {
            Access::All => true,
            Access::Own(user) => job.owner.as_ref().is_some_and(|owner| owner.id == user),
        }
    }

    /// The owner a list or count must keep to, if any.
    pub fn owner(self) -> Option<UserId> {
        match self {
            Access::All => None,
            Access::Own(user) => Some(user),
        }
    }
}

/// What a job's owner may do, for what the job itself does later (spawns, retries): an admin's
/// job everything, a member's (or a removed user's) its own, the server's own (no owner)
/// everything.
pub async fn owner_access(
    store: &dyn UserStore,
    owner: Option<&Owner>,
) -> Result<Access, StoreError> {
    let Some(owner) = owner else {
        return Ok(Access::All);
    };
    let user = store.user_find(&owner.name).await?;
    Ok(match user {
        Some(user) if user.id == owner.id && user.role == Role::Admin => Access::All,
        _ => Access::Own(owner.id),
    })
}

/// An API token as stored: only its hash, found by a public prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: i64,
    pub prefix: String,
    pub hash: Vec<u8>,
    pub user: UserId,
    /// What the token is for, as its creator described it.
    pub name: String,
    pub created_at: Timestamp,
    /// `None`: until revoked.
    pub expires_at: Option<Timestamp>,
}

impl TokenRecord {
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// The answer of a guarded removal: done, nothing to remove, or refused (and why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarded {
    Done,
    NotFound,
    Refused(String),
}

/// Why `user` may not be removed when `admins` admins remain (it included): the server keeps
/// an admin. A store asks this inside the write, with the admins it locked.
pub fn removal_refused(user: &User, admins: usize) -> Option<String> {
    (user.role == Role::Admin && admins <= 1).then(|| {
        format!(
            "`{}` is the last admin; add another admin before removing it",
            user.name
        )
    })
}

/// Why a token of `owner` may not be revoked when `admins` admins remain and the owner holds
/// `live_tokens` unexpired tokens (this one included): the last admin keeps a way in. A store
/// asks this inside the write, with the admins it locked.
pub fn revocation_refused(
    token: &TokenRecord,
    owner: &User,
    admins: usize,
    live_tokens: usize,
) -> Option<String> {
    (owner.role == Role::Admin && admins <= 1 && live_tokens <= 1).then(|| {
        format!(
            "token {} is the last admin's last valid token; create another first \
             (`runway token create`)",
            token.id
        )
    })
}

/// A valid token and the user it speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub token: TokenRecord,
    pub user: User,
}

/// Longest user name.
pub const MAX_USER_NAME: usize = 64;

/// A user name: 1 to 64 characters of lowercase letters, digits, `.`, `_` and `-`, starting with
/// a letter or a digit, so it reads the same in a URL, a table and a shell.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let well_formed = !name.is_empty()
        && name.len() <= MAX_USER_NAME
        && name.starts_with(|first: char| first.is_ascii_lowercase() || first.is_ascii_digit())
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte)
        });
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a user name; use 1 to {MAX_USER_NAME} lowercase letters, digits, \
             `.`, `_` or `-`, starting with a letter or a digit"
        ))
    }
}

/// The records of users, tokens and browser sessions. Removing a user or a token ends what it
/// opened (tokens, sessions) in the same write.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Adds a user with its first token, both or neither; `None` when a user of that name
    /// exists.
    async fn user_insert(
        &self,
        name: &str,
        role: Role,
        first_token: TokenRecord,
        now: Timestamp,
    ) -> Result<Option<(User, TokenRecord)>, StoreError>;

    /// The users not removed, by name.
    async fn user_list(&self) -> Result<Vec<User>, StoreError>;

    async fn user_find(&self, name: &str) -> Result<Option<User>, StoreError>;

    /// Removes a user, its tokens, their sessions and its sign-in codes, unless
    /// [`removal_refused`] says no, decided on what the write read with the admins locked: two
    /// removals at once never leave no admin. Its jobs stay.
    async fn user_remove(&self, id: UserId, now: Timestamp) -> Result<Guarded, StoreError>;

    async fn token_insert(&self, token: TokenRecord) -> Result<TokenRecord, StoreError>;

    /// The token whose public prefix is `prefix` (expired or not) and its user, unless the user
    /// was removed.
    async fn token_find(&self, prefix: &str) -> Result<Option<Holder>, StoreError>;

    /// The tokens of `user`, or of everyone, oldest first.
    async fn token_list(&self, user: Option<UserId>) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes a token and ends its sessions, unless [`revocation_refused`] says no, decided as
    /// [`UserStore::user_remove`] decides. Expired tokens go in the same write.
    async fn token_delete(&self, id: i64, now: Timestamp) -> Result<Guarded, StoreError>;

    /// Stores a browser session (the hash of its cookie) for a token, valid until `expires_at`.
    async fn web_session_insert(
        &self,
        hash: Vec<u8>,
        token_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// The token and user of an unexpired browser session.
    async fn web_session_find(
        &self,
        hash: Vec<u8>,
        now: Timestamp,
    ) -> Result<Option<Holder>, StoreError>;

    /// Ends a browser session; false when there was none.
    async fn web_session_delete(&self, hash: Vec<u8>) -> Result<bool, StoreError>;

    /// Keeps a sign-in code (its hash) for `user` until `expires_at`; expired codes go.
    async fn signin_code_insert(
        &self,
        hash: Vec<u8>,
        user: UserId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// The user of an unused, unexpired code and when the code expires; the code stays
    /// unused.
    async fn signin_code_find(
        &self,
        hash: Vec<u8>,
        now: Timestamp,
    ) -> Result<Option<(User, Timestamp)>, StoreError>;

    /// Spends an unused, unexpired code: its user, or `None` when it was not valid (a second
    /// use included).
    async fn signin_code_use(
        &self,
        hash: Vec<u8>,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_plain_lowercase_words() {
        for good in ["alice", "ci-bot", "render.farm_2", "7up"] {
            assert_eq!(check_user_name(good), Ok(()), "{good}");
        }
        for bad in ["", "Alice", "-x", ".x", "a b", "é", "a/b", &"a".repeat(65)] {
            let message = check_user_name(bad).unwrap_err();
            assert!(message.contains("lowercase letters"), "{bad}: {message}");
        }
    }

    #[test]
    fn a_token_expires_at_its_end_and_one_without_an_end_never() {
        let at = |seconds| crate::clock::micros_to_timestamp(seconds * 1_000_000);
        let token = TokenRecord {
            id: 1,
            prefix: "p".into(),
            hash: Vec::new(),
            user: UserId(1),
            name: String::new(),
            created_at: at(0),
            expires_at: Some(at(100)),
        };
        assert!(!token.expired(at(99)));
        assert!(token.expired(at(100)));
        let forever = TokenRecord {
            expires_at: None,
            ..token
        };
        assert!(!forever.expired(at(i64::from(u32::MAX))));
    }

    #[test]
    fn roles_read_as_written() {
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert_eq!("member".parse::<Role>(), Ok(Role::Member));
        assert!(
            "root"
                .parse::<Role>()
                .unwrap_err()
                .contains("admin or member")
        );
        assert_eq!(Role::Member.as_str(), "member");
    }
}
