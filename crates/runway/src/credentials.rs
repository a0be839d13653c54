//! The credentials file: where `runway serve` leaves the server URL and the first admin token
//! so the local CLI works without flags. Mode 0600, under `$XDG_CONFIG_HOME/runway/`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub url: String,
    pub token: String,
}

/// `$XDG_CONFIG_HOME/runway/credentials.toml`, or `~/.config/runway/credentials.toml`.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("runway").join("credentials.toml"))
}

pub fn read() -> Result<Option<Credentials>, String> {
    let Some(path) = path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    toml::from_str(&text).map(Some).map_err(|error| {
        format!(
            "{} is not a valid credentials file: {error}",
            path.display()
        )
    })
}

/// Writes the file readable by its owner only; returns where.
pub fn write(credentials: &Credentials) -> Result<PathBuf, String> {
    let path = path().ok_or("neither XDG_CONFIG_HOME nor HOME is set")?;
    let dir = path.parent().expect("the path has a parent");
    // The runway directory holds a token: only its owner may list or enter it.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let text = toml::to_string(credentials).expect("credentials serialize");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    // An existing file keeps its old mode on open: tighten it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(text.as_bytes()))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    Ok(path)
}
