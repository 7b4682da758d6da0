//! `plumb gc`: permanently removes deleted runs and experiments from a store opened directly,
//! artifacts first (so a failure leaves the rows for the next attempt), then the rows.
//!
//! gc removes only what plumb created for a deleted run: the folder `<location>/<run_id>` that
//! holds the run's `artifacts`, in the artifact destination or under a local root the operator
//! named, reached without following any symlink, and only when no experiment's location lies
//! inside it. An experiment's own location is never removed, whatever was stored in it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use plumb_artifacts::{ArtifactPath, ArtifactStore, Location};
use plumb_store::{DeletedRun, TrackingStore};

use crate::cli::GcArgs;
use crate::wiring::Backend;

/// What gc may touch: the artifact destination, the operator's local roots, and every
/// experiment's location (none of which a removed folder may hold).
struct Scope {
    destination: ArtifactStore,
    /// (as given, canonical) absolute local roots.
    roots: Vec<(PathBuf, PathBuf)>,
    /// (experiment id, location) of every experiment that parses.
    locations: Vec<(String, Location)>,
}

/// Why a run's folder is not removed: left in place (the row still goes), or failed (the row
/// stays for the next attempt).
enum Skip {
    NotOurs(String),
    Failed(String),
}

impl Scope {
    /// The store and path of the folder plumb made for `run_id` at `artifact_uri`.
    fn run_folder(
        &self,
        run_id: &str,
        artifact_uri: &str,
    ) -> Result<(ArtifactStore, ArtifactPath), Skip> {
        let not_ours = |why: &str| Skip::NotOurs(format!("{artifact_uri}: {why}"));
        let location = Location::parse(artifact_uri).map_err(|e| not_ours(&e.message))?;
        let dest = self.destination.local_root();
        let (store, folder) = match &location {
            Location::Proxy(path) => {
                let segs: Vec<&str> = path.segments().collect();
                if segs.len() < 2
                    || segs[segs.len() - 1] != "artifacts"
                    || segs[segs.len() - 2] != run_id
                {
                    return Err(not_ours("not a folder plumb made for this run"));
                }
                let folder = ArtifactPath::parse(&segs[..segs.len() - 1].join("/"))
                    .map_err(|e| not_ours(&e.message))?;
                (self.destination.clone(), folder)
            }
            Location::Local(path) => {
                let run_dir = path.parent().filter(|_| path.ends_with("artifacts"));
                let Some(run_dir) = run_dir.filter(|d| d.file_name().is_some_and(|n| n == run_id))
                else {
                    return Err(not_ours("not a folder plumb made for this run"));
                };
                let Some((root, rel)) = self.local_root_of(run_dir) else {
                    return Err(not_ours(
                        "outside the artifact destination and every --artifact-root",
                    ));
                };
                let store = ArtifactStore::local(root).map_err(|e| Skip::Failed(e.message))?;
                (store, rel)
            }
            Location::Remote(..) => return Err(not_ours("plumb cannot reach this location")),
        };
        let folder_location = match (&location, dest) {
            (Location::Local(p), _) => {
                Location::Local(p.parent().map(Path::to_path_buf).unwrap_or_default())
            }
            _ => Location::Proxy(folder.clone()),
        };
        if let Some((id, _)) = self
            .locations
            .iter()
            .find(|(_, loc)| folder_location.contains(loc, dest))
        {
            return Err(not_ours(&format!(
                "the folder holds the artifact location of experiment {id}"
            )));
        }
        Ok((store, folder))
    }

    /// The operator's root that strictly contains `dir`, and `dir` relative to it.
    fn local_root_of(&self, dir: &Path) -> Option<(PathBuf, ArtifactPath)> {
        self.roots.iter().find_map(|(given, canonical)| {
            let rel = dir
                .strip_prefix(given)
                .or_else(|_| dir.strip_prefix(canonical))
                .ok()?;
            let rel = rel.to_str()?;
            let rel = ArtifactPath::parse(rel).ok().filter(|p| !p.is_root())?;
            Some((canonical.clone(), rel))
        })
    }
}

async fn all_locations(store: &dyn TrackingStore) -> anyhow::Result<Vec<(String, Location)>> {
    Ok(plumb_store::all_experiments(store)
        .await?
        .into_iter()
        .filter_map(|e| {
            Location::parse(&e.artifact_location)
                .ok()
                .map(|l| (e.experiment_id, l))
        })
        .collect())
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
    let destination = ArtifactStore::from_uri(&args.artifacts_destination)
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .with_context(|| {
            format!(
                "opening the artifact destination {}",
                args.artifacts_destination
            )
        })?;
    let mut roots = Vec::new();
    if let Some(root) = destination.local_root() {
        roots.push((root.to_path_buf(), root.to_path_buf()));
    }
    for root in &args.artifact_roots {
        let given = std::path::absolute(root)
            .with_context(|| format!("--artifact-root {}", root.display()))?;
        let canonical = given
            .canonicalize()
            .with_context(|| format!("--artifact-root {}", root.display()))?;
        roots.push((given, canonical));
    }
    let backend = Backend::open(&args.backend_store_uri, "mlflow-artifacts:/", 2).await?;
    let result = collect(&backend, destination, roots, &args, before).await;
    backend.close().await;
    result
}

async fn collect(
    backend: &Backend,
    destination: ArtifactStore,
    roots: Vec<(PathBuf, PathBuf)>,
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
            if !runs.iter().any(|r| &r.run_id == id) {
                bail!("run {id} was not deleted{age} (delete it first with `plumb runs delete`)");
            }
        }
        for id in &args.experiment_ids {
            if !experiments.iter().any(|e| &e.experiment_id == id) {
                bail!("experiment {id} was not deleted{age} (delete it first with `plumb experiments delete`)");
            }
        }
        runs.retain(|r| args.run_ids.contains(&r.run_id));
        experiments.retain(|e| args.experiment_ids.contains(&e.experiment_id));
    }
    // Every run of an experiment removed goes with it, whenever it was deleted.
    for run in store.deleted(None).await?.runs {
        if experiments
            .iter()
            .any(|e| e.experiment_id == run.experiment_id)
            && !runs.iter().any(|r| r.run_id == run.run_id)
        {
            runs.push(run);
        }
    }
    if runs.is_empty() && experiments.is_empty() {
        println!("nothing to remove");
        return Ok(());
    }
    let scope = Scope {
        destination,
        roots,
        locations: all_locations(store.as_ref()).await?,
    };
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut purged_runs = Vec::new();
    let mut failed_experiments = Vec::new();
    let mut failures = 0;
    for DeletedRun {
        run_id,
        experiment_id: exp,
        artifact_uri: uri,
    } in &runs
    {
        match scope.run_folder(run_id, uri) {
            Ok((artifacts, folder)) => {
                if !args.dry_run {
                    if let Err(e) = artifacts.delete(&folder).await {
                        eprintln!("warning: run {run_id}: artifacts at {uri} not removed, run kept for the next gc: {}", e.message);
                        failures += 1;
                        failed_experiments.push(exp.clone());
                        continue;
                    }
                }
            }
            Err(Skip::NotOurs(why)) => {
                eprintln!("warning: run {run_id}: artifacts left in place ({why})");
            }
            Err(Skip::Failed(why)) => {
                eprintln!(
                    "warning: run {run_id}: artifacts not removed, run kept for the next gc: {why}"
                );
                failures += 1;
                failed_experiments.push(exp.clone());
                continue;
            }
        }
        println!("{verb} run {run_id} (experiment {exp})");
        purged_runs.push(run_id.clone());
    }
    // An experiment keeps its rows while one of its runs still has artifacts to remove.
    experiments.retain(|e| !failed_experiments.contains(&e.experiment_id));
    for e in &experiments {
        println!("{verb} experiment {}", e.experiment_id);
    }
    if !args.dry_run {
        store
            .purge(
                purged_runs.clone(),
                experiments
                    .iter()
                    .map(|e| e.experiment_id.clone())
                    .collect(),
            )
            .await?;
    }
    println!(
        "{verb} {} run(s) and {} experiment(s)",
        purged_runs.len(),
        experiments.len()
    );
    if failures > 0 {
        bail!("{failures} run(s) kept: their artifacts could not be removed (see the warnings)");
    }
    Ok(())
}
