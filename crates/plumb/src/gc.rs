//! `plumb gc`: permanently removes deleted runs and experiments from a store opened directly,
//! artifacts first (so a failure leaves the rows for the next attempt), then the rows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use plumb_artifacts::{ArtifactPath, ArtifactStore};

use crate::cli::GcArgs;
use crate::wiring::Backend;

/// Removes the artifacts under one run's or experiment's artifact URI, where plumb can reach
/// them: the proxy's destination (`mlflow-artifacts:/...`) or a local folder (`file://`, a path).
async fn remove_artifacts(artifacts: &ArtifactStore, uri: &str) -> anyhow::Result<bool> {
    if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
        let path = ArtifactPath::parse(rest.trim_start_matches('/'))
            .map_err(|e| anyhow::anyhow!("{}", e.message))
            .with_context(|| format!("artifact location {uri}"))?;
        artifacts
            .delete(&path)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))
            .with_context(|| format!("removing artifacts at {uri}"))?;
        return Ok(true);
    }
    let local = uri
        .strip_prefix("file://")
        .or_else(|| (!uri.contains("://")).then_some(uri));
    if let Some(dir) = local.filter(|d| !d.is_empty()) {
        match tokio::fs::remove_dir_all(dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {dir}")),
        }
        return Ok(true);
    }
    Ok(false)
}

pub async fn run(args: GcArgs) -> anyhow::Result<()> {
    if args.backend_store_uri.starts_with("http://")
        || args.backend_store_uri.starts_with("https://")
    {
        bail!("gc works on the store itself: give --backend-store-uri sqlite:///... or postgresql://...");
    }
    let before = match &args.older_than {
        None => None,
        Some(age) => {
            let age = humantime::parse_duration(age)
                .with_context(|| format!("--older-than '{age}': use e.g. 30d, 1d 12h, 90min"))?;
            let cutoff = SystemTime::now()
                .checked_sub(age)
                .unwrap_or(UNIX_EPOCH)
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO);
            Some(i64::try_from(cutoff.as_millis()).unwrap_or(i64::MAX))
        }
    };
    let artifacts = ArtifactStore::from_uri(&args.artifacts_destination)
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .with_context(|| {
            format!(
                "opening the artifact destination {}",
                args.artifacts_destination
            )
        })?;
    let backend = Backend::open(&args.backend_store_uri, "mlflow-artifacts:/", 2).await?;
    let result = collect(&backend, &artifacts, &args, before).await;
    backend.close().await;
    result
}

async fn collect(
    backend: &Backend,
    artifacts: &ArtifactStore,
    args: &GcArgs,
    before: Option<i64>,
) -> anyhow::Result<()> {
    let store = backend.tracking();
    let deleted = store.deleted(before).await?;
    let age = args
        .older_than
        .as_deref()
        .map(|a| format!(" at least {a} ago"))
        .unwrap_or_default();
    let mut runs = deleted.runs;
    let mut experiments = deleted.experiments;
    if !args.run_ids.is_empty() || !args.experiment_ids.is_empty() {
        for id in &args.run_ids {
            if !runs.iter().any(|(r, _, _)| r == id) {
                bail!("run {id} was not deleted{age} (delete it first with `plumb runs delete`)");
            }
        }
        for id in &args.experiment_ids {
            if !experiments.iter().any(|(e, _)| e == id) {
                bail!("experiment {id} was not deleted{age} (delete it first with `plumb experiments delete`)");
            }
        }
        // Runs of a chosen experiment go with it.
        runs.retain(|(r, exp, _)| args.run_ids.contains(r) || args.experiment_ids.contains(exp));
        experiments.retain(|(e, _)| args.experiment_ids.contains(e));
    }
    if runs.is_empty() && experiments.is_empty() {
        println!("nothing to remove");
        return Ok(());
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for (run_id, exp, uri) in &runs {
        let gone_with_experiment = experiments.iter().any(|(e, _)| e == exp);
        if !args.dry_run && !gone_with_experiment && !remove_artifacts(artifacts, uri).await? {
            tracing::warn!(%uri, "artifacts not removed: plumb cannot reach this location");
        }
        println!("{verb} run {run_id} (experiment {exp})");
    }
    for (id, location) in &experiments {
        if !args.dry_run && !remove_artifacts(artifacts, location).await? {
            tracing::warn!(%location, "artifacts not removed: plumb cannot reach this location");
        }
        println!("{verb} experiment {id}");
    }
    if !args.dry_run {
        store
            .purge(
                runs.iter().map(|(r, _, _)| r.clone()).collect(),
                experiments.iter().map(|(e, _)| e.clone()).collect(),
            )
            .await?;
    }
    println!(
        "{verb} {} run(s) and {} experiment(s)",
        runs.len(),
        experiments.len()
    );
    Ok(())
}
