//! API tokens and browser sessions as the server's authentication keeps them: records with a
//! hash, never the secret. The server decides what a valid token looks like; the app keeps them.

use crate::app::App;
use crate::clock::Timestamp;
use crate::store::{StoreError, TokenRecord};

impl App {
    pub async fn token_count(&self) -> Result<u64, StoreError> {
        self.engine.store.token_count().await
    }

    pub async fn token_insert(&self, token: TokenRecord) -> Result<TokenRecord, StoreError> {
        self.engine.store.token_insert(token).await
    }

    /// The token whose public prefix is `prefix`.
    pub async fn token_find(&self, prefix: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.engine.store.token_find(prefix).await
    }

    /// Keeps a browser session (the hash of its cookie) of a token until `expires_at`.
    pub async fn web_session_insert(
        &self,
        hash: Vec<u8>,
        token_id: i64,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let now = self.now();
        self.engine
            .store
            .web_session_insert(hash, token_id, now, expires_at)
            .await
    }

    /// The token of an unexpired browser session.
    pub async fn web_session_find(&self, hash: Vec<u8>) -> Result<Option<TokenRecord>, StoreError> {
        self.engine.store.web_session_find(hash, self.now()).await
    }

    /// Ends a browser session; false when there was none.
    pub async fn web_session_delete(&self, hash: Vec<u8>) -> Result<bool, StoreError> {
        self.engine.store.web_session_delete(hash).await
    }
}
