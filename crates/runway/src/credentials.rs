//! The credentials file: the servers the CLI knows, each with its URL and token, by name, and
//! which one it uses by default (as kubectl contexts or pueue profiles). `runway serve` adds
//! itself on its first start and `runway login` adds or updates one; neither ever overwrites
//! another server's entry. Mode 0600, under `$XDG_CONFIG_HOME/runway/`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One server the CLI can talk to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub url: String,
    pub token: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The server used without `--server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub servers: BTreeMap<String, Server>,
}

/// The file as runway wrote it before it held several servers: one URL and token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SingleServer {
    url: String,
    token: String,
}

impl Credentials {
    /// The server `name` names, or the default one (the only one, when there is no default).
    pub fn pick(&self, name: Option<&str>) -> Result<Option<&Server>, String> {
        match name {
            Some(name) => self.servers.get(name).map(Some).ok_or_else(|| {
                format!(
                    "no server named `{name}` in the credentials file; known: {}",
                    self.names()
                )
            }),
            None => Ok(match &self.default {
                Some(name) => self.servers.get(name),
                None if self.servers.len() == 1 => self.servers.values().next(),
                None => None,
            }),
        }
    }

    fn names(&self) -> String {
        if self.servers.is_empty() {
            "none (`runway login URL` adds one)".into()
        } else {
            self.servers.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    /// Adds `server` under `name`, or under `name-2`, `name-3`… when another server holds the
    /// name; the same server already known is left as it is. It becomes the default when there
    /// is none. Returns the name it is known by.
    fn add(&mut self, name: &str, server: Server) -> String {
        if let Some((known, _)) = self.servers.iter().find(|(_, held)| **held == server) {
            return known.clone();
        }
        let mut chosen = name.to_string();
        let mut suffix = 2;
        while self.servers.contains_key(&chosen) {
            chosen = format!("{name}-{suffix}");
            suffix += 1;
        }
        self.servers.insert(chosen.clone(), server);
        if self.default.is_none() {
            self.default = Some(chosen.clone());
        }
        chosen
    }
}

/// A server's name from its URL: its host and port.
pub fn name_for(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// `$XDG_CONFIG_HOME/runway/credentials.toml`, or `~/.config/runway/credentials.toml`.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("runway").join("credentials.toml"))
}

/// The file's servers; none when there is no file.
pub fn read() -> Result<Credentials, String> {
    let Some(path) = path() else {
        return Ok(Credentials::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Credentials::default());
        }
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    parse(&text).map_err(|error| {
        format!(
            "{} is not a valid credentials file: {error}",
            path.display()
        )
    })
}

fn parse(text: &str) -> Result<Credentials, toml::de::Error> {
    toml::from_str::<Credentials>(text).or_else(|error| {
        let Ok(single) = toml::from_str::<SingleServer>(text) else {
            return Err(error);
        };
        let mut credentials = Credentials::default();
        credentials.add(
            &name_for(&single.url),
            Server {
                url: single.url,
                token: single.token,
            },
        );
        Ok(credentials)
    })
}

/// Holds the credentials file's lock while it is read, changed and written: two servers
/// starting at once must not each write the file without the other's entry.
fn locked() -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    let path = path().ok_or("neither XDG_CONFIG_HOME nor HOME is set")?;
    let dir = path.parent().expect("the path has a parent");
    make_private_dir(dir)?;
    let lock = dir.join("credentials.lock");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock)
        .map_err(|error| format!("cannot open {}: {error}", lock.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, error)| format!("cannot lock {}: {error}", lock.display()))
}

/// Adds a server the way `runway serve` does on its first start: never over another server's
/// entry. Returns the file, the name the server is known by, and the default name.
pub fn add(server: Server) -> Result<(PathBuf, String, String), String> {
    let _lock = locked()?;
    let mut credentials = read()?;
    let name = credentials.add(&name_for(&server.url), server);
    let default = credentials.default.clone().unwrap_or_else(|| name.clone());
    let path = write(&credentials)?;
    Ok((path, name, default))
}

/// Saves `server` under `name` (replacing what that name held: the user asked for it) and
/// makes it the default, as `runway login` does. Returns the file.
pub fn save_as(name: &str, server: Server) -> Result<PathBuf, String> {
    let _lock = locked()?;
    let mut credentials = read()?;
    credentials.servers.insert(name.to_string(), server);
    credentials.default = Some(name.to_string());
    write(&credentials)
}

/// Writes the file readable by its owner only, whole or not at all (a temporary file renamed
/// over it); returns where.
fn write(credentials: &Credentials) -> Result<PathBuf, String> {
    let path = path().ok_or("neither XDG_CONFIG_HOME nor HOME is set")?;
    let dir = path.parent().expect("the path has a parent");
    make_private_dir(dir)?;
    let text = toml::to_string(credentials).expect("credentials serialize");
    let temporary = dir.join(format!(".credentials.toml.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, &path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(format!("cannot write {}: {error}", path.display()));
    }
    Ok(path)
}

/// The runway directory holds tokens: only its owner may list or enter it.
fn make_private_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str, token: &str) -> Server {
        Server {
            url: url.into(),
            token: token.into(),
        }
    }

    #[test]
    fn another_server_at_the_same_address_gets_a_name_of_its_own() {
        let mut credentials = Credentials::default();
        let first = credentials.add("127.0.0.1:7869", server("http://127.0.0.1:7869", "rwy_a"));
        let second = credentials.add("127.0.0.1:7869", server("http://127.0.0.1:7869", "rwy_b"));
        let again = credentials.add("127.0.0.1:7869", server("http://127.0.0.1:7869", "rwy_a"));
        assert_eq!(
            (first.as_str(), second.as_str()),
            ("127.0.0.1:7869", "127.0.0.1:7869-2")
        );
        assert_eq!(again, first, "a server already known is left as it is");
        assert_eq!(credentials.default.as_deref(), Some("127.0.0.1:7869"));
        assert_eq!(credentials.servers["127.0.0.1:7869"].token, "rwy_a");
        assert_eq!(credentials.pick(None).unwrap().unwrap().token, "rwy_a");
        assert_eq!(
            credentials
                .pick(Some("127.0.0.1:7869-2"))
                .unwrap()
                .unwrap()
                .token,
            "rwy_b"
        );
        let unknown = credentials.pick(Some("prod")).unwrap_err();
        assert!(unknown.contains("127.0.0.1:7869-2"), "{unknown}");
    }

    #[test]
    fn a_file_of_one_server_as_runway_wrote_it_before_still_reads() {
        let credentials = parse("url = \"http://127.0.0.1:7869\"\ntoken = \"rwy_a\"\n").unwrap();
        assert_eq!(credentials.default.as_deref(), Some("127.0.0.1:7869"));
        assert_eq!(credentials.pick(None).unwrap().unwrap().token, "rwy_a");
        assert!(parse("something = 1\n").is_err());
    }

    #[test]
    fn a_name_is_the_host_and_port() {
        assert_eq!(name_for("http://127.0.0.1:7869"), "127.0.0.1:7869");
        assert_eq!(name_for("https://jobs.example.com/"), "jobs.example.com");
    }
}
