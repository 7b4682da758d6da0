//! Runs the shared store conformance suite against PostgreSQL, one fresh database per case
//! (dropped when the case ends), on the server named by `PLUMB_TEST_POSTGRES_URL` (default: the
//! machine's own, `postgres://postgres@127.0.0.1:5432/postgres`).

use std::sync::Arc;

use plumb_store::conformance::{Fixture, Store};
use plumb_store_postgres::{PgOptions, PgStore};
use sqlx::{Connection, PgConnection};

fn admin_url() -> String {
    std::env::var("PLUMB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The admin URL pointed at another database.
fn url_for(db: &str) -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{db}")
}

struct PgFixture {
    store: Store,
    db: String,
}

impl Fixture for PgFixture {
    fn store(&self) -> Store {
        self.store.clone()
    }
}

impl Drop for PgFixture {
    fn drop(&mut self) {
        // Drop cannot await: a short-lived thread with its own runtime drops the database.
        let db = self.db.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

async fn fresh() -> PgFixture {
    let db = format!("plumb_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url())
        .await
        .expect("PostgreSQL must be reachable at PLUMB_TEST_POSTGRES_URL (or 127.0.0.1:5432)");
    sqlx::query(&format!("CREATE DATABASE \"{db}\""))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let store = PgStore::connect(&url_for(&db), "mlflow-artifacts:/", PgOptions::default())
        .await
        .expect("connect");
    PgFixture {
        store: Arc::new(store),
        db,
    }
}

plumb_store::conformance_tests!(fresh());

/// A statement that runs past `statement_timeout` is cancelled by PostgreSQL and answered as a
/// 400 (the same request would run as long again), not as 503 "try again".
#[tokio::test]
async fn a_statement_past_the_timeout_is_cancelled_and_answered_400() {
    let fixture = fresh().await;
    let store = PgStore::connect(
        &url_for(&fixture.db),
        "mlflow-artifacts:/",
        PgOptions {
            statement_timeout: Some(std::time::Duration::from_millis(200)),
            ..PgOptions::default()
        },
    )
    .await
    .expect("connect");
    // Another session holds the experiments table, so the store's read waits on it.
    let mut blocker = PgConnection::connect(&url_for(&fixture.db))
        .await
        .expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut blocker)
        .await
        .expect("begin");
    sqlx::query("LOCK TABLE experiments IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .expect("lock");
    let started = std::time::Instant::now();
    let err = plumb_store::TrackingStore::get_experiment(&store, "0")
        .await
        .expect_err("cancelled by the statement timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(
        err.code,
        plumb_core::ErrorCode::InvalidParameterValue,
        "{err:?}"
    );
    assert!(err.message.contains("statement timeout"), "{}", err.message);
    sqlx::query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("rollback");
    // Without the lock the same call answers.
    assert!(plumb_store::TrackingStore::get_experiment(&store, "0")
        .await
        .is_ok());
    store.close().await;
}

/// Two replicas logging the same points at the same moment: the group commit's fast path inserts
/// new points without a conflict check, so one of them meets the other's rows; it must rerun
/// its requests on the checked path and answer success, and every point is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_with_identical_points_both_succeed() {
    use plumb_core::entities::Metric;
    use plumb_store::{Batch, NewRun, TrackingStore};
    let fixture = fresh().await;
    let other = PgStore::connect(
        &url_for(&fixture.db),
        "mlflow-artifacts:/",
        PgOptions::default(),
    )
    .await
    .expect("second replica");
    let first: Arc<dyn TrackingStore> = fixture.store.clone();
    let second: Arc<dyn TrackingStore> = Arc::new(other);
    let run = first
        .create_run(NewRun {
            experiment_id: "0".into(),
            ..Default::default()
        })
        .await
        .expect("run")
        .info
        .run_id;
    for round in 0..40i64 {
        let points: Vec<Metric> = (0..50)
            .map(|i| {
                let step = round * 100 + i;
                Metric::new("x", step as f64, step, step)
            })
            .collect();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for store in [first.clone(), second.clone()] {
            let (run, points, barrier) = (run.clone(), points.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .log_batch(
                        &run,
                        Batch {
                            metrics: points,
                            ..Default::default()
                        },
                    )
                    .await
            }));
        }
        for t in tasks {
            t.await
                .expect("task")
                .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        }
    }
    let history = first
        .metric_history(&run, "x", 0, None)
        .await
        .expect("history");
    assert_eq!(history.items.len(), 40 * 50);
    let latest = first.get_run(&run).await.expect("run").data.metrics;
    assert_eq!(latest[0].step, 39 * 100 + 49);
}

/// One replica at a time leads the monitoring work (a session advisory lock); when the leader's
/// process goes (its connection closes), another takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_monitoring_until_it_goes() {
    use plumb_store::monitoring::MonitorStore;
    let fixture = fresh().await;
    let url = url_for(&fixture.db);
    let a = PgStore::connect(&url, "mlflow-artifacts:/", PgOptions::default())
        .await
        .expect("replica a");
    let b = PgStore::connect(&url, "mlflow-artifacts:/", PgOptions::default())
        .await
        .expect("replica b");
    assert!(a.lead().await.expect("a"), "the first to ask leads");
    assert!(a.lead().await.expect("a again"), "and keeps leading");
    assert!(!b.lead().await.expect("b"), "the other does not");
    drop(a);
    let mut led = false;
    for _ in 0..50 {
        if b.lead().await.expect("b") {
            led = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(led, "b takes over once a's connection is gone");
}
