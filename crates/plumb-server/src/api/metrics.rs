//! Metric history endpoints: get-history (paginated), get-history-bulk, get-history-bulk-interval.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use plumb_core::validation::{decode_offset_token, GET_METRIC_HISTORY_MAX_RESULTS};
use plumb_core::Error;
use plumb_store::IntervalQuery;
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::extract::Params;
use crate::{wire, ApiError, AppState};

const MAX_RUN_IDS: usize = 100;
const MAX_INTERVAL_RESULTS: i64 = 2500;

pub async fn history(State(st): State<AppState>, p: Params) -> ApiResult<Response> {
    let run_id = p.run_id()?;
    let key = p.req_str("metric_key")?;
    let limit = match p.opt_i64("max_results")? {
        Some(n) if n <= 0 => {
            return Err(ApiError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be a positive integer"
        )))
        }
        other => other,
    };
    let offset = decode_offset_token(p.opt_str("page_token")?.as_deref())?;
    let page = st
        .store
        .metric_history(&run_id, &key, offset, limit)
        .await?;
    Ok(wire::points_page(page.items, page.next_page_token).await)
}

pub async fn bulk(State(st): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    let run_ids = p.str_list("run_id")?;
    if run_ids.is_empty() {
        return Err(ApiError::invalid(
            "GetMetricHistoryBulk request must specify at least one run_id.",
        ));
    }
    if run_ids.len() > MAX_RUN_IDS {
        return Err(ApiError::invalid(format!(
            "GetMetricHistoryBulk request cannot specify more than {MAX_RUN_IDS} run_ids. Received {} run_ids.",
            run_ids.len()
        )));
    }
    let key = p
        .opt_str("metric_key")?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::invalid("GetMetricHistoryBulk request must specify a metric_key.")
        })?;
    let limit = p
        .opt_i64("max_results")?
        .unwrap_or(GET_METRIC_HISTORY_MAX_RESULTS)
        .clamp(1, GET_METRIC_HISTORY_MAX_RESULTS);
    let points = st.store.metric_history_bulk(run_ids, &key, limit).await?;
    Ok(Json(
        json!({ "metrics": points.iter().map(wire::run_metric).collect::<Vec<_>>() }),
    ))
}

pub async fn bulk_interval(State(st): State<AppState>, p: Params) -> ApiResult<Response> {
    let run_ids = p.str_list("run_ids")?;
    if run_ids.is_empty() {
        return Err(ApiError::invalid(
            "Missing value for required parameter 'run_ids'.",
        ));
    }
    if run_ids.len() > MAX_RUN_IDS {
        return Err(ApiError::invalid(format!(
            "GetMetricHistoryBulkInterval request must specify at most {MAX_RUN_IDS} run_ids. Received {} run_ids.",
            run_ids.len()
        )));
    }
    let key = p
        .opt_str("metric_key")?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::missing("metric_key"))?;
    let steps = match (p.opt_i64("start_step")?, p.opt_i64("end_step")?) {
        (None, None) => None,
        (Some(s), Some(e)) if e < s => {
            return Err(ApiError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={s} and end_step={e}."
            )))
        }
        (Some(s), Some(e)) => Some((s, e)),
        _ => {
            return Err(ApiError::invalid(
                "If either start step or end step are specified, both must be specified.",
            ))
        }
    };
    let max_results = p.opt_i64("max_results")?.unwrap_or(MAX_INTERVAL_RESULTS);
    if !(1..=MAX_INTERVAL_RESULTS).contains(&max_results) {
        return Err(ApiError::invalid(format!(
            "max_results must be between 1 and {MAX_INTERVAL_RESULTS}."
        )));
    }
    let query = IntervalQuery {
        run_ids,
        metric_key: key,
        steps,
        max_results: max_results as usize,
    };
    let points = st.store.metric_history_bulk_interval(query).await?;
    Ok(wire::points_page(points, None).await)
}
