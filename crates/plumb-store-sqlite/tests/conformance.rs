//! Runs the shared store conformance suite against SQLite, one fresh database file per case.

use std::sync::Arc;

use plumb_store::conformance::Store;
use plumb_store_sqlite::SqliteStore;

async fn fresh() -> Store {
    // Kept on disk (under the system temp dir) so that the WAL files outlive the test's handles.
    let dir = tempfile::Builder::new()
        .prefix("plumb-conformance")
        .tempdir()
        .expect("tempdir")
        .keep();
    let store = SqliteStore::open(dir.join("plumb.db"), "mlflow-artifacts:/").expect("open");
    Arc::new(store)
}

plumb_store::conformance_tests!(fresh());
