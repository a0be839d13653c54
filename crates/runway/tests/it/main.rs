//! Black-box tests of the real `runway` binary: each test starts `runway serve` on a free
//! loopback port with its own data directory and credentials, and drives it over HTTP and
//! through the CLI.

mod api;
mod api_fuzz;
mod artifacts;
mod blogcast;
mod cli;
mod crash;
mod dashboard;
mod disk;
mod engine;
mod limits;
mod list_order;
mod live;
mod members;
mod metrics;
mod servers;
mod session;
mod top;
mod trees;
mod triggers;
mod watch;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use runway_api::JobResponse;
use runway_client::Client;

pub const RUNWAY: &str = env!("CARGO_BIN_EXE_runway");

/// Where a test server keeps its state. `RUNWAY_TEST_BACKEND=postgres` runs the black-box
/// tests against PostgreSQL (a database of its own per server, on the server
/// `RUNWAY_TEST_DATABASE` names); otherwise SQLite in the data directory.
pub enum Backend {
    Sqlite,
    /// Shared by the servers of a test that runs several on one database.
    Postgres(std::sync::Arc<TestDatabase>),
}

impl Backend {
    fn from_env() -> Backend {
        match std::env::var("RUNWAY_TEST_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres(std::sync::Arc::new(TestDatabase::create())),
            Ok("sqlite") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("RUNWAY_TEST_BACKEND is sqlite or postgres, not {other:?}"),
        }
    }
}

/// A PostgreSQL database made for one test server, dropped with it.
pub struct TestDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl TestDatabase {
    /// A database on the server `RUNWAY_TEST_DATABASE` names.
    pub fn create() -> TestDatabase {
        TestDatabase::on(&std::env::var("RUNWAY_TEST_DATABASE").expect(
            "RUNWAY_TEST_DATABASE names the PostgreSQL server the tests use; ./scripts/test starts one",
        ))
    }

    /// A database on the server whose administrative URL is `admin`.
    pub fn on(admin: &str) -> TestDatabase {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = admin.to_string();
        let name = format!(
            "runway_it_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        postgres_query(&admin, &format!("CREATE DATABASE {name}"));
        let (base, query) = admin
            .split_once('?')
            .map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
        let base = &base[..base.rfind('/').expect("a URL with a database")];
        let url = match query {
            Some(query) => format!("{base}/{name}?{query}"),
            None => format!("{base}/{name}"),
        };
        TestDatabase { admin, name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        postgres_query(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs `sql` on the PostgreSQL database at `url` from a thread of its own (tests call it from
/// inside and outside runtimes); every value as text.
fn postgres_query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let driver = tokio::spawn(connection);
                let messages = client.simple_query(&sql).await.unwrap();
                drop(client);
                let _ = driver.await;
                messages
                    .iter()
                    .filter_map(|message| match message {
                        tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                            (0..row.len())
                                .map(|index| row.get(index).map(str::to_string))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .collect()
            })
    })
    .join()
    .unwrap()
}

/// A running `runway serve` in a temporary directory.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub token: String,
    /// The dashboard line `serve` printed at its last start.
    pub dashboard: String,
    /// The config file `serve` is given: `runway.toml` in the temporary directory, or an
    /// example's.
    config: PathBuf,
    /// Started in its temporary directory with `--data data`, as a user gives a relative
    /// data directory; otherwise `--data` is absolute.
    relative_data: bool,
    /// Environment variables the server is started with.
    env: Vec<(String, String)>,
    pub backend: Backend,
    child: Option<Child>,
}

impl Server {
    /// Starts a server with `config` as its config file (empty: defaults).
    pub fn start(config: &str) -> Server {
        Server::start_with(|_| config.to_string())
    }

    /// Starts a server whose config is made from its temporary directory.
    pub fn start_with(config: impl FnOnce(&Path) -> String) -> Server {
        Server::start_prepared(config, |_| {})
    }

    /// Like `start_with`, after `prepare` got the (not yet existing) data directory's path, e.g.
    /// to mount a filesystem there.
    pub fn start_prepared(
        config: impl FnOnce(&Path) -> String,
        prepare: impl FnOnce(&Path),
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runway.toml");
        std::fs::write(&file, config(dir.path())).unwrap();
        prepare(&dir.path().join("data"));
        let mut server = Server::unstarted(dir, file, false);
        // What is prepared is the data directory: SQLite's database lives there.
        server.backend = Backend::Sqlite;
        server.launch();
        server
    }

    /// Starts a server whose config is made from its temporary directory, on `database`
    /// (which other servers of the test share), with the first server's admin token.
    pub fn start_on(
        database: &std::sync::Arc<TestDatabase>,
        token: Option<&str>,
        config: impl FnOnce(&Path) -> String,
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runway.toml");
        std::fs::write(&file, config(dir.path())).unwrap();
        let mut server = Server::unstarted(dir, file, false);
        server.backend = Backend::Postgres(std::sync::Arc::clone(database));
        server.launch();
        if let Some(token) = token {
            server.token = token.to_string();
        }
        server
    }

    /// The id its data directory gave the server: the first part of its workers' names.
    pub fn server_id(&self) -> String {
        std::fs::read_to_string(self.path("data").join("server-id")).unwrap()
    }

    /// Starts a server on SQLite whatever `RUNWAY_TEST_BACKEND` says: for what only SQLite
    /// has (its database file, `runway backup`).
    pub fn start_sqlite(config: &str) -> Server {
        Server::start_prepared(|_| config.to_string(), |_| {})
    }

    /// Starts a server with a config file of the repository (an example), its data in a
    /// temporary directory.
    pub fn start_example(config: &str) -> Server {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(config);
        Server::launched(tempfile::tempdir().unwrap(), file)
    }

    fn launched(dir: tempfile::TempDir, config: PathBuf) -> Server {
        Server::launched_with(dir, config, false)
    }

    /// Starts a server from its temporary directory with a relative data directory (`data`).
    pub fn start_with_relative_data(config: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runway.toml");
        std::fs::write(&file, config).unwrap();
        Server::launched_with(dir, file, true)
    }

    /// Starts a server whose config is made from its temporary directory, with environment
    /// variables (a webhook's secret).
    pub fn start_with_env(config: impl FnOnce(&Path) -> String, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runway.toml");
        std::fs::write(&file, config(dir.path())).unwrap();
        let mut server = Server::unstarted(dir, file, false);
        server.env = env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        server.launch();
        server
    }

    fn unstarted(dir: tempfile::TempDir, config: PathBuf, relative_data: bool) -> Server {
        Server {
            dir,
            url: String::new(),
            token: String::new(),
            dashboard: String::new(),
            config,
            relative_data,
            env: Vec::new(),
            backend: Backend::from_env(),
            child: None,
        }
    }

    fn launched_with(dir: tempfile::TempDir, config: PathBuf, relative_data: bool) -> Server {
        let mut server = Server::unstarted(dir, config, relative_data);
        server.launch();
        server
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn xdg(&self) -> PathBuf {
        self.path("xdg")
    }

    /// Starts (or restarts) the process on the same data directory.
    pub fn launch(&mut self) {
        let listen = if self.url.is_empty() {
            "127.0.0.1:0".to_string()
        } else {
            self.url.trim_start_matches("http://").to_string()
        };
        let mut child = Command::new(RUNWAY)
            .args(["serve", "--config"])
            .arg(&self.config)
            .arg("--data")
            .arg(if self.relative_data {
                PathBuf::from("data")
            } else {
                self.path("data")
            })
            .current_dir(self.dir.path())
            .args(["--listen", &listen])
            .args(match &self.backend {
                Backend::Sqlite => Vec::new(),
                Backend::Postgres(database) => vec!["--database".to_string(), database.url.clone()],
            })
            .env_remove("RUNWAY_DATABASE")
            .env("XDG_CONFIG_HOME", self.xdg())
            .env("RUNWAY_LOG", "warn")
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .expect("runway serve exited before listening")
                .unwrap();
            if let Some(token) = line.strip_prefix("  rwy_") {
                self.token = format!("rwy_{token}");
            }
            if let Some(rest) = line.strip_prefix("runway listening on ") {
                self.url = rest.split_whitespace().next().unwrap().to_string();
                self.dashboard = lines
                    .next()
                    .expect("runway serve prints the dashboard after listening")
                    .unwrap();
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url, Some(self.token.clone()))
    }

    /// Runs the CLI against this server, with the credentials file `serve` wrote.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, "")
    }

    pub fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(RUNWAY)
            .args(args)
            .env("XDG_CONFIG_HOME", self.xdg())
            .env_remove("RUNWAY_URL")
            .env_remove("RUNWAY_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// SIGKILL: no shutdown, no cleanup.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait for a graceful exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        child.wait().unwrap().code()
    }

    /// The SQLite database file (on SQLite).
    pub fn database(&self) -> PathBuf {
        self.path("data").join("runway.sqlite3")
    }

    /// Runs `sql` (written for both SQLite and PostgreSQL) on the server's store as another
    /// process would, read-only on SQLite; every value as text.
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match &self.backend {
            Backend::Postgres(database) => postgres_query(&database.url, sql),
            Backend::Sqlite => {
                let connection = rusqlite::Connection::open_with_flags(
                    self.database(),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap();
                let mut statement = connection.prepare(sql).unwrap();
                let columns = statement.column_count();
                statement
                    .query_map([], |row| {
                        (0..columns)
                            .map(|index| {
                                Ok(match row.get::<_, rusqlite::types::Value>(index)? {
                                    rusqlite::types::Value::Null => None,
                                    rusqlite::types::Value::Integer(value) => {
                                        Some(value.to_string())
                                    }
                                    rusqlite::types::Value::Real(value) => Some(value.to_string()),
                                    rusqlite::types::Value::Text(value) => Some(value),
                                    rusqlite::types::Value::Blob(_) => Some("<blob>".into()),
                                })
                            })
                            .collect()
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Polls `check` until it returns `Some` or the deadline passes.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn is_terminal(job: &JobResponse) -> bool {
    matches!(job.status.as_str(), "succeeded" | "failed" | "cancelled")
}

/// Submits a job of `job_type` with `input`; returns its id.
pub async fn submit(client: &Client, job_type: &str, input: serde_json::Value) -> String {
    client
        .submit(&runway_api::SubmitJobRequest {
            job_type: job_type.into(),
            input,
            ..Default::default()
        })
        .await
        .unwrap()
        .id
}

/// Waits until the job is terminal and returns it.
pub async fn finished(client: &Client, id: &str) -> JobResponse {
    eventually(
        &format!("job {id} to finish"),
        Duration::from_secs(30),
        || async {
            let job = client.job(id).await.unwrap();
            is_terminal(&job).then_some(job)
        },
    )
    .await
}

/// Whether a process with this pid is alive.
pub fn alive(pid: i32) -> bool {
    let status = Path::new("/proc").join(pid.to_string()).join("stat");
    match std::fs::read_to_string(status) {
        // A zombie (state Z) has ended.
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
