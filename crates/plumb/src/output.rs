//! How CLI results are printed: aligned tables for people, JSON (MLflow's REST shapes) and CSV
//! for scripts. Everything goes to stdout; errors go to stderr from `main`.

use std::time::{Duration, UNIX_EPOCH};

use comfy_table::{presets, ContentArrangement, Table, TableComponent};
use serde_json::Value;

/// Epoch milliseconds as `2026-11-26 19:05:50` (UTC); empty when absent.
pub fn time(ms: &Value) -> String {
    let Some(ms) = ms
        .as_i64()
        .or_else(|| ms.as_str().and_then(|s| s.parse().ok()))
    else {
        return String::new();
    };
    let Ok(ms) = u64::try_from(ms) else {
        return ms.to_string();
    };
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms))
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// A JSON scalar as table text (strings unquoted, absent as empty).
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows under a header, fitted to the terminal's width when there is one.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_style(TableComponent::HeaderLines, '-')
        .set_style(TableComponent::MiddleHeaderIntersections, ' ')
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    println!("{t}");
}

pub fn json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn csv(header: &[String], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout());
    w.write_record(header)?;
    for r in rows {
        w.write_record(&r)?;
    }
    w.flush()?;
    Ok(())
}
