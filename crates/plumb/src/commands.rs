//! The CLI verbs (`experiments`, `runs`, `models`, `db`), each written once against MLflow's REST
//! API through [`Client`], whatever the tracking URI points at.

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use axum::http::Method;
use serde_json::{json, Value};

use crate::cli::{DbCmd, ExperimentRef, ExperimentsCmd, Format, ModelsCmd, RunsCmd};
use crate::client::Client;
use crate::output::{self, text, time};

/// Collects up to `max` items of `field` across pages of a search.
async fn paged(
    client: &Client,
    method: Method,
    path: &str,
    mut params: Value,
    field: &str,
    max: usize,
) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    loop {
        params["max_results"] = json!((max - items.len()).min(1000));
        let page = client.call(method.clone(), path, params.clone()).await?;
        items.extend(page[field].as_array().cloned().unwrap_or_default());
        match page["next_page_token"].as_str() {
            Some(token) if !token.is_empty() && items.len() < max => {
                params["page_token"] = json!(token);
            }
            _ => return Ok(items),
        }
    }
}

fn experiment_rows(exps: &[Value]) -> Vec<Vec<String>> {
    exps.iter()
        .map(|e| {
            vec![
                text(&e["experiment_id"]),
                text(&e["name"]),
                text(&e["artifact_location"]),
                text(&e["lifecycle_stage"]),
            ]
        })
        .collect()
}

fn print_experiments(exps: Vec<Value>, format: Format) -> anyhow::Result<()> {
    let header = [
        "experiment_id",
        "name",
        "artifact_location",
        "lifecycle_stage",
    ];
    match format {
        Format::Json => output::json(&json!({ "experiments": exps })),
        Format::Csv => output::csv(&header.map(String::from), experiment_rows(&exps)),
        Format::Table => {
            output::table(
                &["Experiment Id", "Name", "Artifact Location", "Stage"],
                experiment_rows(&exps),
            );
            Ok(())
        }
    }
}

async fn get_experiment(
    client: &Client,
    id: Option<&str>,
    name: Option<&str>,
) -> anyhow::Result<Value> {
    let answer = match (id, name) {
        (Some(id), _) => {
            client
                .call(
                    Method::GET,
                    "experiments/get",
                    json!({ "experiment_id": id }),
                )
                .await?
        }
        (None, Some(name)) => {
            client
                .call(
                    Method::GET,
                    "experiments/get-by-name",
                    json!({ "experiment_name": name }),
                )
                .await?
        }
        (None, None) => bail!("give --experiment-id or --experiment-name"),
    };
    Ok(answer["experiment"].clone())
}

async fn experiment_id(client: &Client, which: &ExperimentRef) -> anyhow::Result<String> {
    if let Some(id) = &which.experiment_id {
        return Ok(id.clone());
    }
    let exp = get_experiment(client, None, which.experiment_name.as_deref()).await?;
    Ok(text(&exp["experiment_id"]))
}

pub async fn experiments(cmd: ExperimentsCmd) -> anyhow::Result<()> {
    match cmd {
        ExperimentsCmd::Create {
            target,
            experiment_name,
            artifact_location,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let mut body = json!({ "name": experiment_name });
            if let Some(loc) = artifact_location {
                body["artifact_location"] = json!(loc);
            }
            let made = client
                .call(Method::POST, "experiments/create", body)
                .await?;
            println!(
                "Created experiment '{experiment_name}' with id {}",
                text(&made["experiment_id"])
            );
            client.close().await;
        }
        ExperimentsCmd::Search {
            target,
            view,
            filter,
            max_results,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let mut params = json!({ "view_type": view.as_str() });
            if let Some(f) = filter {
                params["filter"] = json!(f);
            }
            let exps = paged(
                &client,
                Method::POST,
                "experiments/search",
                params,
                "experiments",
                max_results as usize,
            )
            .await?;
            client.close().await;
            print_experiments(exps, output_format)?;
        }
        ExperimentsCmd::Get {
            target,
            experiment_id,
            experiment_name,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let exp = get_experiment(
                &client,
                experiment_id.as_deref(),
                experiment_name.as_deref(),
            )
            .await?;
            client.close().await;
            match output_format {
                Format::Json => output::json(&json!({ "experiment": exp }))?,
                other => print_experiments(vec![exp], other)?,
            }
        }
        ExperimentsCmd::Rename {
            target,
            experiment_id,
            new_name,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            client
                .call(
                    Method::POST,
                    "experiments/update",
                    json!({ "experiment_id": experiment_id, "new_name": new_name }),
                )
                .await?;
            client.close().await;
            println!("Experiment {experiment_id} renamed to '{new_name}'");
        }
        ExperimentsCmd::Delete {
            target,
            experiment_id,
        } => {
            lifecycle(
                &target.tracking_uri,
                "experiments/delete",
                json!({ "experiment_id": experiment_id }),
            )
            .await?;
            println!(
                "Experiment {experiment_id} deleted (restore it with `plumb experiments restore`)"
            );
        }
        ExperimentsCmd::Restore {
            target,
            experiment_id,
        } => {
            lifecycle(
                &target.tracking_uri,
                "experiments/restore",
                json!({ "experiment_id": experiment_id }),
            )
            .await?;
            println!("Experiment {experiment_id} restored");
        }
    }
    Ok(())
}

async fn lifecycle(uri: &str, path: &str, body: Value) -> anyhow::Result<()> {
    let client = Client::connect(uri).await?;
    client.call(Method::POST, path, body).await?;
    client.close().await;
    Ok(())
}

/// Keys of one kind (`metrics`, `params`, `tags`) over all runs, sorted.
fn keys(runs: &[Value], kind: &str) -> Vec<String> {
    let mut set = BTreeSet::new();
    for r in runs {
        for kv in r["data"][kind].as_array().into_iter().flatten() {
            set.insert(text(&kv["key"]));
        }
    }
    set.into_iter().collect()
}

fn value_of(run: &Value, kind: &str, key: &str) -> String {
    run["data"][kind]
        .as_array()
        .and_then(|a| a.iter().find(|kv| kv["key"] == key))
        .map(|kv| text(&kv["value"]))
        .unwrap_or_default()
}

/// Runs as in MLflow's `search_runs` data frame: info columns, then `metrics.*`, `params.*`,
/// `tags.*` (tag columns only with `with_tags`).
fn print_runs(runs: Vec<Value>, format: Format) -> anyhow::Result<()> {
    if let Format::Json = format {
        return output::json(&json!({ "runs": runs }));
    }
    let metric_keys = keys(&runs, "metrics");
    let param_keys = keys(&runs, "params");
    let with_tags = matches!(format, Format::Csv);
    let tag_keys = if with_tags {
        keys(&runs, "tags")
    } else {
        Vec::new()
    };
    let info_cols: &[&str] = match format {
        Format::Csv => &[
            "run_id",
            "experiment_id",
            "run_name",
            "status",
            "start_time",
            "end_time",
            "user_id",
            "artifact_uri",
            "lifecycle_stage",
        ],
        _ => &["run_id", "run_name", "status", "start_time"],
    };
    let mut header: Vec<String> = info_cols.iter().map(|s| s.to_string()).collect();
    header.extend(metric_keys.iter().map(|k| format!("metrics.{k}")));
    header.extend(param_keys.iter().map(|k| format!("params.{k}")));
    header.extend(tag_keys.iter().map(|k| format!("tags.{k}")));
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let info = &r["info"];
            let mut row: Vec<String> = info_cols
                .iter()
                .map(|c| match (*c, format) {
                    ("start_time" | "end_time", Format::Table) => time(&info[*c]),
                    _ => text(&info[*c]),
                })
                .collect();
            row.extend(metric_keys.iter().map(|k| value_of(r, "metrics", k)));
            row.extend(param_keys.iter().map(|k| value_of(r, "params", k)));
            row.extend(tag_keys.iter().map(|k| value_of(r, "tags", k)));
            row
        })
        .collect();
    match format {
        Format::Csv => output::csv(&header, rows),
        _ => {
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            output::table(&header, rows);
            Ok(())
        }
    }
}

pub async fn runs(cmd: RunsCmd) -> anyhow::Result<()> {
    match cmd {
        RunsCmd::List {
            target,
            experiment,
            view,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let exp = experiment_id(&client, &experiment).await?;
            let runs = paged(
                &client,
                Method::POST,
                "runs/search",
                json!({ "experiment_ids": [exp], "run_view_type": view.as_str() }),
                "runs",
                usize::MAX,
            )
            .await?;
            client.close().await;
            match output_format {
                Format::Table => {
                    let rows = runs
                        .iter()
                        .map(|r| {
                            let i = &r["info"];
                            vec![
                                time(&i["start_time"]),
                                text(&i["run_name"]),
                                text(&i["run_id"]),
                                text(&i["status"]),
                            ]
                        })
                        .collect();
                    output::table(&["Date", "Name", "ID", "Status"], rows);
                }
                other => print_runs(runs, other)?,
            }
        }
        RunsCmd::Describe {
            target,
            run_id,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let run = client
                .call(Method::GET, "runs/get", json!({ "run_id": run_id }))
                .await?;
            client.close().await;
            match output_format {
                Format::Json => output::json(&run)?,
                other => print_runs(vec![run["run"].clone()], other)?,
            }
        }
        RunsCmd::Search {
            target,
            experiment,
            filter,
            order_by,
            max_results,
            view,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let exp = experiment_id(&client, &experiment).await?;
            let mut params = json!({
                "experiment_ids": [exp],
                "run_view_type": view.as_str(),
                "order_by": order_by,
            });
            if let Some(f) = filter {
                params["filter"] = json!(f);
            }
            let runs = paged(
                &client,
                Method::POST,
                "runs/search",
                params,
                "runs",
                max_results as usize,
            )
            .await?;
            client.close().await;
            print_runs(runs, output_format)?;
        }
        RunsCmd::Delete { target, run_id } => {
            lifecycle(
                &target.tracking_uri,
                "runs/delete",
                json!({ "run_id": run_id }),
            )
            .await?;
            println!("Run {run_id} deleted (restore it with `plumb runs restore`)");
        }
        RunsCmd::Restore { target, run_id } => {
            lifecycle(
                &target.tracking_uri,
                "runs/restore",
                json!({ "run_id": run_id }),
            )
            .await?;
            println!("Run {run_id} restored");
        }
    }
    Ok(())
}

/// A registry filter value, quoted for MLflow's grammar.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn aliases(entity: &Value) -> String {
    let mut list: Vec<String> = entity["aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| match a {
            Value::String(s) => s.clone(),
            other => format!("{}={}", text(&other["alias"]), text(&other["version"])),
        })
        .collect();
    list.sort();
    list.join(", ")
}

pub async fn models(cmd: ModelsCmd) -> anyhow::Result<()> {
    match cmd {
        ModelsCmd::List {
            target,
            filter,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let mut params = json!({});
            if let Some(f) = filter {
                params["filter"] = json!(f);
            }
            let models = paged(
                &client,
                Method::GET,
                "registered-models/search",
                params,
                "registered_models",
                usize::MAX,
            )
            .await?;
            client.close().await;
            let rows: Vec<Vec<String>> = models
                .iter()
                .map(|m| {
                    let latest = m["latest_versions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| text(&v["version"]).parse::<i64>().ok())
                        .max()
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    vec![
                        text(&m["name"]),
                        latest,
                        aliases(m),
                        time(&m["last_updated_timestamp"]),
                    ]
                })
                .collect();
            match output_format {
                Format::Json => output::json(&json!({ "registered_models": models }))?,
                Format::Csv => output::csv(
                    &["name", "latest_version", "aliases", "last_updated"].map(String::from),
                    rows,
                )?,
                Format::Table => {
                    output::table(&["Name", "Latest Version", "Aliases", "Last Updated"], rows)
                }
            }
        }
        ModelsCmd::Describe {
            target,
            name,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let model = client
                .call(
                    Method::GET,
                    "registered-models/get",
                    json!({ "name": name }),
                )
                .await?;
            client.close().await;
            match output_format {
                Format::Json => output::json(&model)?,
                _ => {
                    let m = &model["registered_model"];
                    let rows = vec![
                        vec!["name".into(), text(&m["name"])],
                        vec!["description".into(), text(&m["description"])],
                        vec!["aliases".into(), aliases(m)],
                        vec!["created".into(), time(&m["creation_timestamp"])],
                        vec!["last updated".into(), time(&m["last_updated_timestamp"])],
                    ];
                    output::table(&["Field", "Value"], rows);
                }
            }
        }
        ModelsCmd::Versions {
            target,
            name,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let versions = paged(
                &client,
                Method::GET,
                "model-versions/search",
                json!({ "filter": format!("name = {}", quoted(&name)), "order_by": ["version_number DESC"] }),
                "model_versions",
                usize::MAX,
            )
            .await?;
            // Aliases are shown by get-registered-model, not by the version search.
            let model = client
                .call(
                    Method::GET,
                    "registered-models/get",
                    json!({ "name": name }),
                )
                .await
                .context("reading the model's aliases")?;
            client.close().await;
            let alias_of = |version: &str| {
                let mut list: Vec<String> = model["registered_model"]["aliases"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| text(&a["version"]) == version)
                    .map(|a| text(&a["alias"]))
                    .collect();
                list.sort();
                list.join(", ")
            };
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| {
                    let version = text(&v["version"]);
                    vec![
                        version.clone(),
                        text(&v["current_stage"]),
                        text(&v["status"]),
                        alias_of(&version),
                        text(&v["run_id"]),
                        time(&v["creation_timestamp"]),
                    ]
                })
                .collect();
            match output_format {
                Format::Json => output::json(&json!({ "model_versions": versions }))?,
                Format::Csv => output::csv(
                    &["version", "stage", "status", "aliases", "run_id", "created"]
                        .map(String::from),
                    rows,
                )?,
                Format::Table => output::table(
                    &["Version", "Stage", "Status", "Aliases", "Run ID", "Created"],
                    rows,
                ),
            }
        }
        ModelsCmd::SetAlias {
            target,
            name,
            alias,
            version,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            client
                .call(
                    Method::POST,
                    "registered-models/alias",
                    json!({ "name": name, "alias": alias, "version": version }),
                )
                .await?;
            client.close().await;
            println!("models:/{name}@{alias} -> version {version}");
        }
    }
    Ok(())
}

pub async fn db(cmd: DbCmd) -> anyhow::Result<()> {
    match cmd {
        DbCmd::Status { backend_store_uri } => {
            let (current, latest) = crate::wiring::schema_status(&backend_store_uri).await?;
            println!("database schema version: {current}");
            println!("this plumb's schema version: {latest}");
            match current.cmp(&latest) {
                std::cmp::Ordering::Less => println!("status: upgrade needed (`plumb db upgrade`)"),
                std::cmp::Ordering::Equal => println!("status: up to date"),
                std::cmp::Ordering::Greater => {
                    bail!("the database is newer than this plumb (version {current} > {latest}); upgrade plumb")
                }
            }
        }
        DbCmd::Upgrade { backend_store_uri } => {
            let (before, _) = crate::wiring::schema_status(&backend_store_uri).await?;
            let backend =
                crate::wiring::Backend::open(&backend_store_uri, "mlflow-artifacts:/", 2).await?;
            backend.close().await;
            let (after, _) = crate::wiring::schema_status(&backend_store_uri).await?;
            if before == after {
                println!("already at schema version {after}");
            } else {
                println!("migrated from schema version {before} to {after}");
            }
        }
    }
    Ok(())
}
