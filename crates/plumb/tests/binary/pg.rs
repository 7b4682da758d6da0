//! PostgreSQL for the binary's tests: a fresh database on the machine's server (dropped after),
//! and a private throwaway cluster (initdb in a temp folder) that a test may restart.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

pub(crate) fn admin_url() -> String {
    std::env::var("PLUMB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database created for one test and dropped (with its connections) when this is dropped.
pub(crate) struct TempDb {
    pub(crate) name: String,
    admin: String,
}

impl TempDb {
    pub(crate) async fn create(admin: &str) -> Self {
        let name = format!("plumb_test_{}", uuid::Uuid::new_v4().simple());
        let mut c = PgConnection::connect(admin)
            .await
            .expect("PostgreSQL must be reachable at PLUMB_TEST_POSTGRES_URL (or 127.0.0.1:5432)");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut c)
            .await
            .expect("create database");
        Self {
            name,
            admin: admin.to_string(),
        }
    }

    /// The URI plumb is given, in the spelling MLflow users have in their configs.
    pub(crate) fn url(&self) -> String {
        let base = self
            .admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&self.admin);
        format!(
            "{}/{}",
            base.replacen("postgres://", "postgresql://", 1),
            self.name
        )
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let (name, admin) = (self.name.clone(), self.admin.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut c)
                            .await;
                }
            });
        })
        .join();
    }
}

/// A private PostgreSQL cluster in a temp folder, on its own port, stopped and removed on drop.
/// Built with the machine's PostgreSQL binaries; as root, they run as the `postgres` user.
pub(crate) struct PrivateCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub(crate) port: u16,
}

fn pg_bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A PostgreSQL tool's command (as `postgres` when we are root: PostgreSQL refuses root).
fn pg_command(exe: &std::path::Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

impl PrivateCluster {
    fn tool(&self, name: &str, args: &[&str]) {
        let out = pg_command(&self.bin.join(name))
            .args(args)
            .output()
            .expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{name} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(crate) fn start_new() -> Self {
        let dir = std::env::temp_dir().join(format!("plumb-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(ok.success());
        }
        let cluster = Self {
            bin: pg_bin_dir(),
            dir,
            port: crate::free_port(),
        };
        let data = cluster.data();
        cluster.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        cluster.start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    pub(crate) fn start(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.to_string_lossy()
        );
        let log = self.dir.join("log").to_string_lossy().into_owned();
        self.tool(
            "pg_ctl",
            &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"],
        );
    }

    /// Fast shutdown: open sessions are cut off, as in a failover or a restart by an operator.
    pub(crate) fn stop(&self) {
        self.tool("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    pub(crate) fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub(crate) async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while PgConnection::connect(&self.admin_url()).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "private PostgreSQL did not come up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = pg_command(&self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
