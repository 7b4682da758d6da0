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
    // Every search is asked as two row-id ranges merged in order (the path large databases
    // take); HTTP and client tests cover the single query.
    let store = SqliteStore::open(dir.join("plumb.db"), "mlflow-artifacts:/")
        .expect("open")
        .with_ranged_search_from(0);
    Arc::new(store)
}

plumb_store::conformance_tests!(fresh());
