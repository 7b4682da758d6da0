//! Schema versions on PostgreSQL: a new database is migrated on start; one migrated by a newer
//! plumb is refused with a message, and left untouched.

use std::process::Command;

use sqlx::{Connection, PgConnection};

use crate::pg::{admin_url, TempDb};
use crate::Plumb;

#[tokio::test]
async fn a_database_newer_than_plumb_is_refused() {
    let db = TempDb::create(&admin_url()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Migrated by this plumb first.
    let plumb = Plumb::start_with(dir.path(), &["--backend-store-uri", &db.url()]).await;
    drop(plumb);
    let db_url = format!(
        "{}/{}",
        admin_url()
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or_default(),
        db.name
    );
    let mut c = PgConnection::connect(&db_url).await.expect("connect");
    sqlx::query("INSERT INTO plumb_schema (version) VALUES (999)")
        .execute(&mut c)
        .await
        .expect("pretend a newer plumb migrated");

    let out = Command::new(env!("CARGO_BIN_EXE_plumb"))
        .args(["server", "--port", "0", "--backend-store-uri", &db.url()])
        .current_dir(dir.path())
        .output()
        .expect("run plumb");
    assert!(!out.status.success(), "plumb started on a newer schema");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("schema is version 999") && stderr.contains("upgrade plumb"),
        "{stderr}"
    );
    let experiments: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM experiments")
        .fetch_one(&mut c)
        .await
        .expect("still there");
    assert_eq!(experiments, 1);
}
