//! `plumb monitor apply|list|show|delete`, `plumb alerts list` and `plumb webhooks
//! list|test|deliveries`: monitors declared in a YAML file, applied idempotently over plumb's
//! monitoring API (a server, or a store opened directly), their alerts and notifications, and
//! MLflow's registry webhooks with their delivery log.

use anyhow::{anyhow, bail, Context};
use axum::http::Method;
use serde_json::{json, Value};

use crate::cli::{AlertsCmd, Format, MonitorCmd, WebhooksCmd};
use crate::client::Client;
use crate::output::{self, text, time};

fn segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn num(v: &Value) -> String {
    v.as_f64()
        .map(|x| {
            format!("{x:.6}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        })
        .unwrap_or_default()
}

pub async fn monitor(cmd: MonitorCmd) -> anyhow::Result<()> {
    match cmd {
        MonitorCmd::Apply {
            target,
            file,
            prune,
            dry_run,
        } => {
            let content = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let specs = plumb_monitor::spec::from_yaml_file(&content)
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let client = Client::connect(&target.tracking_uri).await?;
            let existing: Vec<Value> = client.plumb(Method::GET, "monitors", json!({})).await?
                ["monitors"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut outcome = Vec::new();
            for spec in &specs {
                let body = serde_json::to_value(spec)?;
                let before = existing.iter().find(|m| m["name"] == json!(spec.name));
                let verb = match before {
                    None => "created",
                    Some(m) if m["spec"] == body => "unchanged",
                    Some(_) => "updated",
                };
                if !dry_run && verb != "unchanged" {
                    client
                        .plumb(
                            Method::PUT,
                            &format!("monitors/{}", segment(&spec.name)),
                            body,
                        )
                        .await
                        .with_context(|| format!("applying monitor '{}'", spec.name))?;
                }
                outcome.push((spec.name.clone(), verb));
            }
            if prune {
                for m in &existing {
                    let name = text(&m["name"]);
                    if !specs.iter().any(|s| s.name == name) {
                        if !dry_run {
                            client
                                .plumb(
                                    Method::DELETE,
                                    &format!("monitors/{}", segment(&name)),
                                    json!({}),
                                )
                                .await?;
                        }
                        outcome.push((name, "deleted"));
                    }
                }
            }
            client.close().await;
            for (name, verb) in outcome {
                let note = if dry_run { " (dry run)" } else { "" };
                println!("monitor/{name} {verb}{note}");
            }
            Ok(())
        }
        MonitorCmd::List {
            target,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let monitors = client.plumb(Method::GET, "monitors", json!({})).await?;
            let alerts = client.plumb(Method::GET, "alerts", json!({})).await?;
            client.close().await;
            let list = monitors["monitors"].as_array().cloned().unwrap_or_default();
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|m| {
                    let name = text(&m["name"]);
                    let mine = alerts["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|a| a["monitor"] == json!(name));
                    let firing = mine.clone().filter(|a| a["state"] == "firing").count();
                    let pending = mine.filter(|a| a["state"] == "pending").count();
                    vec![
                        name,
                        text(&m["spec"]["model"]),
                        m["spec"]["rules"]
                            .as_array()
                            .map_or(0, Vec::len)
                            .to_string(),
                        firing.to_string(),
                        pending.to_string(),
                        time(&m["updated_ms"]),
                    ]
                })
                .collect();
            match output_format {
                Format::Json => output::json(&monitors)?,
                Format::Csv => output::csv(
                    &["name", "model", "rules", "firing", "pending", "updated"].map(String::from),
                    rows,
                )?,
                Format::Table => output::table(
                    &["Name", "Model", "Rules", "Firing", "Pending", "Updated"],
                    rows,
                ),
            }
            Ok(())
        }
        MonitorCmd::Show {
            target,
            name,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let m = client
                .plumb(
                    Method::GET,
                    &format!("monitors/{}", segment(&name)),
                    json!({}),
                )
                .await?;
            client.close().await;
            match output_format {
                Format::Json => output::json(&m)?,
                Format::Table | Format::Csv => {
                    let rows = alert_rows(&m["alerts"]);
                    if matches!(output_format, Format::Csv) {
                        output::csv(&ALERT_COLUMNS.map(|c| c.to_lowercase()), rows)?;
                    } else {
                        println!("{}", serde_json::to_string_pretty(&m["monitor"]["spec"])?);
                        output::table(&ALERT_COLUMNS, rows);
                    }
                }
            }
            Ok(())
        }
        MonitorCmd::Delete { target, name } => {
            let client = Client::connect(&target.tracking_uri).await?;
            client
                .plumb(
                    Method::DELETE,
                    &format!("monitors/{}", segment(&name)),
                    json!({}),
                )
                .await?;
            client.close().await;
            println!("monitor/{name} deleted");
            Ok(())
        }
    }
}

const ALERT_COLUMNS: [&str; 7] = [
    "Monitor", "Rule", "State", "Severity", "Value", "Baseline", "Message",
];

fn alert_rows(alerts: &Value) -> Vec<Vec<String>> {
    alerts
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                text(&a["monitor"]),
                text(&a["rule"]),
                text(&a["state"]),
                text(&a["severity"]),
                num(&a["value"]),
                num(&a["baseline"]),
                text(&a["message"]),
            ]
        })
        .collect()
}

pub async fn alerts(cmd: AlertsCmd) -> anyhow::Result<()> {
    let AlertsCmd::List {
        target,
        monitor,
        state,
        history,
        deliveries,
        max_results,
        output_format,
    } = cmd;
    let client = Client::connect(&target.tracking_uri).await?;
    if deliveries {
        let mut params = json!({"max_results": max_results});
        if let Some(m) = &monitor {
            params["monitor"] = json!(m);
        }
        if let Some(s) = &state {
            params["state"] = json!(s);
        }
        let answer = client.plumb(Method::GET, "deliveries", params).await?;
        client.close().await;
        // Monitors' notifications only (the log also holds MLflow webhooks' deliveries).
        let notices: Vec<Value> = answer["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d.get("monitor").is_some())
            .cloned()
            .collect();
        let rows = notices
            .iter()
            .map(|d| {
                let target = d["target"]
                    .as_object()
                    .and_then(|t| t.iter().find(|(k, _)| *k != "secret_env"))
                    .map(|(k, v)| format!("{k}: {}", text(v)))
                    .unwrap_or_default();
                delivery_row(d, vec![text(&d["monitor"]), target])
            })
            .collect();
        let columns = [
            "Time", "Monitor", "Target", "Event", "State", "Attempts", "Code", "Error",
        ];
        match output_format {
            Format::Json => output::json(&json!({ "deliveries": notices }))?,
            Format::Csv => output::csv(&columns.map(|c| c.to_lowercase()), rows)?,
            Format::Table => output::table(&columns, rows),
        }
        return Ok(());
    }
    let mut params = json!({});
    if let Some(m) = &monitor {
        params["monitor"] = json!(m);
    }
    if let Some(s) = &state {
        params["state"] = json!(s);
    }
    if history {
        params["max_results"] = json!(max_results);
        let answer = client.plumb(Method::GET, "alerts/history", params).await?;
        client.close().await;
        let rows = answer["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                vec![
                    time(&c["timestamp_ms"]),
                    text(&c["monitor"]),
                    text(&c["rule"]),
                    format!("{} -> {}", text(&c["from"]), text(&c["to"])),
                    text(&c["severity"]),
                    num(&c["value"]),
                    text(&c["message"]),
                ]
            })
            .collect();
        let columns = [
            "Time", "Monitor", "Rule", "Change", "Severity", "Value", "Message",
        ];
        match output_format {
            Format::Json => output::json(&answer)?,
            Format::Csv => output::csv(&columns.map(|c| c.to_lowercase()), rows)?,
            Format::Table => output::table(&columns, rows),
        }
        return Ok(());
    }
    if max_results != 100 {
        bail!("--max-results applies to --history and --deliveries");
    }
    let answer = client.plumb(Method::GET, "alerts", params).await?;
    client.close().await;
    let rows = alert_rows(&answer["alerts"]);
    match output_format {
        Format::Json => output::json(&answer)?,
        Format::Csv => output::csv(&ALERT_COLUMNS.map(|c| c.to_lowercase()), rows)?,
        Format::Table => output::table(&ALERT_COLUMNS, rows),
    }
    Ok(())
}

/// A delivery's columns after `lead`: time, action, state, attempts, answer code, error.
fn delivery_row(d: &Value, lead: Vec<String>) -> Vec<String> {
    let mut row = vec![time(&d["created_ms"])];
    row.extend(lead);
    row.extend([
        format!("{}.{}", text(&d["entity"]), text(&d["action"])),
        text(&d["state"]),
        text(&d["attempts"]),
        text(&d["status_code"]),
        text(&d["error"]),
    ]);
    row
}

pub async fn webhooks(cmd: WebhooksCmd) -> anyhow::Result<()> {
    match cmd {
        WebhooksCmd::List {
            target,
            output_format,
        } => {
            let client = Client::connect(&target.tracking_uri).await?;
            let mut hooks = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut params = json!({"max_results": 1000});
                if let Some(t) = &token {
                    params["page_token"] = json!(t);
                }
                let page = client.call(Method::GET, "webhooks", params).await?;
                hooks.extend(page["webhooks"].as_array().cloned().unwrap_or_default());
                match page["next_page_token"].as_str() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            let mut rows = Vec::new();
            for h in &mut hooks {
                let id = text(&h["webhook_id"]);
                let log = client
                    .plumb(
                        Method::GET,
                        "deliveries",
                        json!({"webhook_id": id, "max_results": 1}),
                    )
                    .await?;
                let last = log["deliveries"].get(0).cloned().unwrap_or(Value::Null);
                let events = h["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        format!("{}.{}", text(&e["entity"]), text(&e["action"])).to_lowercase()
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let last_text = if last.is_null() {
                    String::new()
                } else {
                    format!(
                        "{} {} ({})",
                        text(&last["state"]),
                        text(&last["status_code"]),
                        time(&last["created_ms"])
                    )
                };
                rows.push(vec![
                    id,
                    text(&h["name"]),
                    text(&h["status"]),
                    events,
                    text(&h["url"]),
                    last_text,
                ]);
                h["last_delivery"] = last;
            }
            client.close().await;
            let columns = ["Id", "Name", "Status", "Events", "URL", "Last delivery"];
            match output_format {
                Format::Json => output::json(&json!({ "webhooks": hooks }))?,
                Format::Csv => output::csv(&columns.map(|c| c.to_lowercase()), rows)?,
                Format::Table => output::table(&columns, rows),
            }
        }
        WebhooksCmd::Test {
            target,
            webhook_id,
            event,
        } => {
            let mut params = json!({});
            if let Some(e) = &event {
                let (entity, action) = e.split_once('.').ok_or_else(|| {
                    anyhow!("--event: expected entity.action, e.g. model_version.created")
                })?;
                params["event"] =
                    json!({"entity": entity.to_uppercase(), "action": action.to_uppercase()});
            }
            let client = Client::connect(&target.tracking_uri).await?;
            let answer = client
                .call(
                    Method::POST,
                    &format!("webhooks/{}/test", segment(&webhook_id)),
                    params,
                )
                .await;
            client.close().await;
            let result = answer?["result"].clone();
            let status = text(&result["response_status"]);
            if result["success"].as_bool() == Some(true) {
                println!("delivered: HTTP {status}");
            } else if let Some(e) = result["error_message"].as_str() {
                bail!("not delivered: {e}");
            } else {
                bail!(
                    "not delivered: HTTP {status}: {}",
                    text(&result["response_body"])
                );
            }
            if let Some(body) = result["response_body"].as_str().filter(|b| !b.is_empty()) {
                println!("{body}");
            }
        }
        WebhooksCmd::Deliveries {
            target,
            webhook_id,
            state,
            max_results,
            output_format,
        } => {
            let mut params = json!({"max_results": max_results});
            if let Some(id) = &webhook_id {
                params["webhook_id"] = json!(id);
            }
            if let Some(s) = &state {
                params["state"] = json!(s);
            }
            let client = Client::connect(&target.tracking_uri).await?;
            let answer = client.plumb(Method::GET, "deliveries", params).await?;
            client.close().await;
            let hooks: Vec<Value> = answer["deliveries"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d.get("webhook_id").is_some())
                .cloned()
                .collect();
            let rows = hooks
                .iter()
                .map(|d| delivery_row(d, vec![text(&d["webhook_id"])]))
                .collect();
            let columns = [
                "Time", "Webhook", "Event", "State", "Attempts", "Code", "Error",
            ];
            match output_format {
                Format::Json => output::json(&json!({ "deliveries": hooks }))?,
                Format::Csv => output::csv(&columns.map(|c| c.to_lowercase()), rows)?,
                Format::Table => output::table(&columns, rows),
            }
        }
    }
    Ok(())
}
