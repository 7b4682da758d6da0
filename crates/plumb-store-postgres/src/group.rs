//! Group commit of log-batch writes within one process: concurrent requests are queued and
//! written by a few writer tasks, each group in one transaction with one statement per kind of
//! value, and every caller is answered only after the shared COMMIT.
//!
//! A group is all or nothing, so one bad request must not fail its neighbours: a request whose
//! run is missing or not active is answered at once and left out; when the group's writes fail
//! (a param conflict, a value PostgreSQL refuses), the group is rolled back and each request
//! runs again alone, in its own transaction, answered exactly as without grouping. A lost
//! connection during COMMIT leaves the outcome unknown: it is read back with `txid_status` on
//! another connection (a metrics-only group, which is idempotent, is simply written again), so
//! no caller is told "failed" for a write that committed. Replicas stay stateless: each process
//! groups only its own requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use plumb_core::entities::Metric;
use plumb_core::{Error, ErrorCode, Result};
use plumb_store::Batch;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::queries::runs::{self, RunBatch};
use crate::{E, R};

/// Writer tasks per process (see [`PARALLEL_FROM`]).
const WRITERS: usize = 2;
/// At most this many requests ...
const MAX_REQUESTS: usize = 64;
/// ... and about this many values (points, params, tags) in one group.
const MAX_VALUES: usize = 20_000;
/// How long the outcome of a COMMIT whose connection was lost is looked for.
const RESOLVE_FOR: Duration = Duration::from_secs(10);

struct Job {
    run_id: String,
    batch: Batch,
    reply: oneshot::Sender<Result<()>>,
}

impl Job {
    fn values(&self) -> usize {
        self.batch.metrics.len() + self.batch.params.len() + self.batch.tags.len()
    }
}

/// The queue of a store's log-batch writes; its writer tasks stop when the last store clone
/// (and so the last sender) is gone.
pub(crate) struct Committer {
    queue: mpsc::Sender<Job>,
}

impl Committer {
    pub(crate) fn start(pool: PgPool) -> Self {
        let (queue, rx) = mpsc::channel(4 * MAX_REQUESTS);
        let rx = Arc::new(Mutex::new(Gather { rx, held: None }));
        for _ in 0..WRITERS {
            tokio::spawn(writer(pool.clone(), rx.clone()));
        }
        Self { queue }
    }

    /// Queues one request and waits for its answer (given after COMMIT).
    pub(crate) async fn log_batch(&self, run_id: &str, batch: Batch) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            run_id: run_id.to_string(),
            batch,
            reply,
        };
        let closed = || Error::unavailable("the store is shutting down, try again");
        self.queue.send(job).await.map_err(|_| closed())?;
        answer.await.unwrap_or_else(|_| Err(closed()))
    }
}

/// The shared end of the queue, and a job taken that did not fit the last group.
struct Gather {
    rx: mpsc::Receiver<Job>,
    held: Option<Job>,
}

impl Gather {
    /// The next group: waits for one request, then takes what is queued, within the limits.
    async fn next(&mut self) -> Option<Vec<Job>> {
        let first = match self.held.take() {
            Some(job) => job,
            None => self.rx.recv().await?,
        };
        let mut values = first.values();
        let mut jobs = vec![first];
        while jobs.len() < MAX_REQUESTS {
            let Ok(job) = self.rx.try_recv() else { break };
            if values + job.values() > MAX_VALUES {
                self.held = Some(job);
                break;
            }
            values += job.values();
            jobs.push(job);
        }
        Some(jobs)
    }
}

/// Groups of at least this many values are written while the next group gathers (PostgreSQL
/// then inserts on two backends at once); smaller ones are written before the next gathers,
/// which makes the next group bigger (fewer statements and commits for the same requests).
const PARALLEL_FROM: usize = 1_000;

async fn writer(pool: PgPool, gather: Arc<Mutex<Gather>>) {
    loop {
        let mut queue = gather.lock().await;
        let Some(jobs) = queue.next().await else {
            return;
        };
        if jobs.iter().map(Job::values).sum::<usize>() >= PARALLEL_FROM {
            drop(queue);
        }
        write_group(&pool, jobs).await;
    }
}

/// What happened to a group's transaction.
enum Outcome {
    /// Committed: each request's answer (`Err` for those left out before writing).
    Committed(Vec<Result<()>>),
    /// Not committed; `retry`: a deadlock or serialization failure, worth running again.
    RolledBack { retry: bool, error: E },
    /// The connection was lost at COMMIT and the outcome could not be read back.
    Unknown(Error),
}

async fn write_group(pool: &PgPool, jobs: Vec<Job>) {
    let mut attempt = 1u32;
    let error = loop {
        match try_group(pool, &jobs).await {
            Outcome::Committed(answers) => {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let _ = job.reply.send(answer);
                }
                return;
            }
            Outcome::Unknown(e) => {
                for job in jobs {
                    let _ = job.reply.send(Err(e.clone()));
                }
                return;
            }
            Outcome::RolledBack { retry: true, error } if attempt < crate::WRITE_ATTEMPTS => {
                tracing::debug!(attempt, %error, "retrying a group of writes");
                tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                attempt += 1;
            }
            Outcome::RolledBack { error, .. } => break error,
        }
    };
    // A request's own mistake (a changed param) alone is its answer already. The database being
    // away is everyone's answer: running the requests again would wait for it once per request.
    // Anything else the database refused (a duplicate point inserted meanwhile by another
    // writer, a value it cannot take) may be one request's, or an artefact of the group's
    // fast path: each request runs again alone, on the general path.
    let own_mistake = matches!(error, E::Domain(_)) && jobs.len() == 1;
    let error = error.into_domain();
    if own_mistake || error.code == ErrorCode::TemporarilyUnavailable {
        for job in jobs {
            let _ = job.reply.send(Err(error.clone()));
        }
        return;
    }
    tracing::debug!(requests = jobs.len(), %error, "a group failed; writing its requests one by one");
    let alone = Alone { pool };
    for job in jobs {
        let answer = in_tx!(alone, |c| runs::log_batch(c, &job.run_id, &job.batch));
        let _ = job.reply.send(answer);
    }
}

/// What [`in_tx!`] needs to run one request alone.
struct Alone<'a> {
    pool: &'a PgPool,
}

/// One transaction for the whole group.
async fn try_group(pool: &PgPool, jobs: &[Job]) -> Outcome {
    let rolled_back = |error: E| Outcome::RolledBack {
        retry: error.is_retryable(),
        error,
    };
    if jobs.iter().all(|j| {
        j.batch.params.is_empty()
            && j.batch.tags.is_empty()
            && j.batch.metrics.iter().all(|m| m.model_id.is_none())
    }) {
        return metrics_group(pool, jobs).await;
    }
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => return rolled_back(e.into()),
    };
    // The transaction's id (to read its fate back if COMMIT's answer is lost) and the answer of
    // each request whose run is missing or not active (left out of the writes).
    let (txid, answers) = match general(&mut tx, jobs).await {
        Ok(w) => w,
        Err(e) => return rolled_back(e),
    };
    match tx.commit().await {
        Ok(()) => Outcome::Committed(answers),
        Err(e) if lost_connection(&e) => match resolve(pool, txid).await {
            Some(true) => Outcome::Committed(answers),
            Some(false) => rolled_back(e.into()),
            None => Outcome::Unknown(Error::unavailable(format!(
                "the database connection was lost while committing and the outcome could not \
                 be read back; the write may or may not be stored, try again: {e}"
            ))),
        },
        Err(e) => rolled_back(e.into()),
    }
}

/// Metrics-only requests (log-metric, most log-batch calls): one statement for all, committed
/// by itself (no BEGIN / COMMIT round trips). Writing the same points again changes nothing
/// (identical points are stored once and only new ones counted), so when the connection is
/// lost before the answer, the group is simply written again: whether the first attempt
/// committed or not, the second leaves the same state.
async fn metrics_group(pool: &PgPool, jobs: &[Job]) -> Outcome {
    let outcome = async {
        let mut conn = pool.acquire().await?;
        metrics_only(&mut conn, jobs).await
    }
    .await;
    match outcome {
        Ok((_, answers)) => Outcome::Committed(answers),
        Err(E::Db(e)) if lost_connection(&e) => Outcome::RolledBack {
            retry: true,
            error: E::Db(e),
        },
        Err(error) => Outcome::RolledBack {
            retry: error.is_retryable(),
            error,
        },
    }
}

async fn metrics_only(c: &mut PgConnection, jobs: &[Job]) -> R<(i64, Vec<Result<()>>)> {
    let requests: Vec<(&str, &[Metric])> = jobs
        .iter()
        .map(|j| (j.run_id.as_str(), j.batch.metrics.as_slice()))
        .collect();
    let written = runs::log_points_by_id(c, &requests).await?;
    let left_out: Vec<&str> = jobs
        .iter()
        .map(|j| j.run_id.as_str())
        .filter(|id| !written.active.iter().any(|a| a == id))
        .collect();
    let stages: HashMap<String, String> = if left_out.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as("SELECT run_uuid, lifecycle_stage FROM runs WHERE run_uuid = ANY($1)")
            .bind(&left_out)
            .fetch_all(&mut *c)
            .await?
            .into_iter()
            .collect()
    };
    let answers = jobs
        .iter()
        .map(|j| {
            if written.active.contains(&j.run_id) {
                Ok(())
            } else {
                Err(not_writable(
                    &j.run_id,
                    stages.get(&j.run_id).map(String::as_str),
                ))
            }
        })
        .collect();
    Ok((written.txid, answers))
}

/// Requests with params or tags: runs looked up first, then one statement per kind of value.
async fn general(c: &mut PgConnection, jobs: &[Job]) -> R<(i64, Vec<Result<()>>)> {
    let mut ids: Vec<&str> = jobs.iter().map(|j| j.run_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let found: Vec<(i64, String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT txid_current(), u.id, r.run_pk, r.lifecycle_stage
         FROM UNNEST($1::TEXT[]) AS u(id) LEFT JOIN runs r ON r.run_uuid = u.id",
    )
    .bind(&ids)
    .fetch_all(&mut *c)
    .await?;
    let txid = found.first().map(|r| r.0).unwrap_or_default();
    let runs: HashMap<&str, (Option<i64>, Option<&str>)> = found
        .iter()
        .map(|(_, id, pk, stage)| (id.as_str(), (*pk, stage.as_deref())))
        .collect();
    let mut answers = Vec::with_capacity(jobs.len());
    let mut batches = Vec::with_capacity(jobs.len());
    for job in jobs {
        let answer = match runs.get(job.run_id.as_str()) {
            Some((Some(pk), Some("active"))) => {
                batches.push(RunBatch {
                    pk: *pk,
                    run_id: &job.run_id,
                    batch: &job.batch,
                });
                Ok(())
            }
            Some((_, stage)) => Err(not_writable(&job.run_id, *stage)),
            None => Err(not_writable(&job.run_id, None)),
        };
        answers.push(answer);
    }
    if !batches.is_empty() {
        runs::log_batches(c, &batches).await?;
    }
    Ok((txid, answers))
}

/// MLflow's answer for a write to a run that is missing (`stage` `None`) or not active.
fn not_writable(run_id: &str, stage: Option<&str>) -> Error {
    match stage {
        Some(stage) => Error::invalid(format!(
            "The run {run_id} must be in the 'active' state. Current state is {stage}."
        )),
        None => Error::not_found(format!("Run with id={run_id} not found")),
    }
}

/// Whether an error means the connection went away (as opposed to PostgreSQL answering).
fn lost_connection(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    )
}

/// Whether transaction `txid` committed, read on another connection: `None` when that cannot
/// be told within [`RESOLVE_FOR`] (the database stays away).
pub(crate) async fn resolve(pool: &PgPool, txid: i64) -> Option<bool> {
    let deadline = tokio::time::Instant::now() + RESOLVE_FOR;
    let mut pause = Duration::from_millis(20);
    while tokio::time::Instant::now() < deadline {
        let status: std::result::Result<Option<String>, sqlx::Error> =
            sqlx::query_scalar("SELECT txid_status($1)")
                .bind(txid)
                .fetch_one(pool)
                .await;
        match status.as_ref().map(|s| s.as_deref()) {
            Ok(Some("committed")) => return Some(true),
            Ok(Some("aborted")) => return Some(false),
            // Still in progress (its backend has not noticed the lost client yet), or the
            // database is not back: ask again.
            Ok(_) | Err(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
    tracing::warn!(txid, "the outcome of a lost COMMIT could not be read back");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin_url() -> String {
        std::env::var("PLUMB_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    async fn txid(c: &mut PgConnection) -> i64 {
        sqlx::query_scalar("SELECT txid_current()")
            .fetch_one(&mut *c)
            .await
            .expect("txid")
    }

    /// The fate of a transaction is read back from another connection: committed, rolled
    /// back, or ended by its connection's loss.
    #[tokio::test]
    async fn a_lost_commit_is_resolved_by_txid() {
        let pool = PgPool::connect(&admin_url()).await.expect("connect");
        let mut tx = pool.begin().await.expect("begin");
        let committed = txid(&mut tx).await;
        tx.commit().await.expect("commit");
        assert_eq!(resolve(&pool, committed).await, Some(true));

        let mut tx = pool.begin().await.expect("begin");
        let rolled_back = txid(&mut tx).await;
        tx.rollback().await.expect("rollback");
        assert_eq!(resolve(&pool, rolled_back).await, Some(false));

        // A connection killed inside its transaction: the server aborts it.
        let mut victim = pool.acquire().await.expect("acquire");
        sqlx::query("BEGIN")
            .execute(&mut *victim)
            .await
            .expect("begin");
        let lost = txid(&mut victim).await;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *victim)
            .await
            .expect("pid");
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&pool)
            .await
            .expect("terminate");
        let err = sqlx::query("COMMIT")
            .execute(&mut *victim)
            .await
            .expect_err("the connection is gone");
        assert!(
            lost_connection(&err) || matches!(err, sqlx::Error::Database(_)),
            "{err}"
        );
        victim.detach();
        assert_eq!(resolve(&pool, lost).await, Some(false));
        pool.close().await;
    }
}
