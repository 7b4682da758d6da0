//! The store conformance suite: every MLflow invariant that depends on stored state, written once
//! and run against every backend through [`conformance_tests!`](crate::conformance_tests).

use std::sync::Arc;

use plumb_core::entities::{
    Dataset, DatasetInput, LifecycleStage, LoggedModelStatus, Metric, ModelOutput, Param,
    RunStatus, Tag, ViewType,
};
use plumb_core::search::{parse_filter, parse_order_by, Domain};
use plumb_core::ErrorCode;

use plumb_core::registry::{ChangeKind, Stage};

use crate::{
    Batch, ExperimentQuery, IntervalQuery, LoggedModelQuery, NewExperiment, NewLoggedModel,
    NewModelVersion, NewRun, RegistryQuery, RunQuery, RunUpdate,
};

mod monitoring;
mod traces;
mod webhooks;
pub use monitoring::*;
pub use traces::*;
pub use webhooks::*;

pub type Store = Arc<dyn crate::Store>;

/// What a backend's test factory hands out: a fresh, empty store, and whatever must live as long
/// as the case (a temporary database dropped with it, say).
pub trait Fixture {
    fn store(&self) -> Store;
}

impl Fixture for Store {
    fn store(&self) -> Store {
        self.clone()
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh store from `$factory`
/// (an async expression evaluating to a [`Fixture`], kept until the case ends).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@cases $factory;
            default_experiment_exists, experiment_lifecycle, experiment_search, run_lifecycle,
            params_are_immutable_and_batches_atomic, latest_metric_rules,
            long_batches_store_each_point_once, metric_history_pages,
            run_search_filters_and_order, run_search_pagination, bulk_interval_sampling,
            datasets_and_outputs, logged_models, concurrent_writers_lose_nothing,
            concurrent_bad_requests_fail_alone,
            registry_lifecycle, registry_history_of_aliases_and_stages, registry_search,
            concurrent_version_creates_are_consecutive,
            garbage_collection, import_keeps_ids_and_history,
            monitors_are_stored_and_replaced, events_fold_with_labels_and_generations,
            concurrent_event_writers_lose_nothing, alert_states_and_history,
            run_points_in_a_window,
            webhooks_lifecycle_and_paging, registry_events_queue_deliveries,
            claims_are_leased_and_finished, alert_changes_are_notified_once,
            traces_start_search_tag_delete, spans_create_and_complete_traces,
            assessments_override_and_restore, traces_searched_by_spans_and_assessments,
            trace_metrics_and_correlation, trace_tokens_sum_spans_once);
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $factory.await;
                let store = $crate::conformance::Fixture::store(&fixture);
                $crate::conformance::$case(store).await;
                drop(fixture);
            }
        )*
    };
}

async fn experiment(store: &Store, name: &str) -> String {
    store
        .create_experiment(NewExperiment {
            name: name.into(),
            ..Default::default()
        })
        .await
        .expect("create experiment")
}

async fn run(store: &Store, exp: &str, name: &str) -> String {
    store
        .create_run(NewRun {
            experiment_id: exp.into(),
            user_id: "tester".into(),
            run_name: Some(name.into()),
            start_time: Some(1000),
            tags: vec![],
        })
        .await
        .expect("create run")
        .info
        .run_id
}

fn metric(key: &str, value: f64, ts: i64, step: i64) -> Metric {
    Metric::new(key, value, ts, step)
}

async fn log(
    store: &Store,
    run_id: &str,
    metrics: Vec<Metric>,
    params: Vec<Param>,
    tags: Vec<Tag>,
) {
    store
        .log_batch(
            run_id,
            Batch {
                metrics,
                params,
                tags,
            },
        )
        .await
        .expect("log batch");
}

fn query(exp: &str, filter: &str, order: &[&str]) -> RunQuery {
    RunQuery {
        experiment_ids: vec![exp.into()],
        filter: parse_filter(Domain::Runs, filter).expect("filter"),
        order_by: parse_order_by(
            Domain::Runs,
            &order.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .expect("order"),
        view_type: ViewType::ActiveOnly,
        max_results: 1000,
        offset: 0,
    }
}

async fn names(store: &Store, q: RunQuery) -> Vec<String> {
    store
        .search_runs(q)
        .await
        .expect("search")
        .items
        .into_iter()
        .map(|r| r.info.run_name)
        .collect()
}

pub async fn default_experiment_exists(store: Store) {
    let e = store.get_experiment("0").await.expect("experiment 0");
    assert_eq!(e.name, "Default");
    assert_eq!(e.lifecycle_stage, LifecycleStage::Active);
    assert!(
        e.artifact_location.ends_with('0'),
        "{}",
        e.artifact_location
    );
}

pub async fn experiment_lifecycle(store: Store) {
    let id = experiment(&store, "exp-a").await;
    let e = store
        .get_experiment_by_name("exp-a")
        .await
        .expect("by name");
    assert_eq!(e.experiment_id, id);
    assert!(e.artifact_location.ends_with(&id));
    let dup = store
        .create_experiment(NewExperiment {
            name: "exp-a".into(),
            ..Default::default()
        })
        .await
        .expect_err("duplicate");
    assert_eq!(dup.code, ErrorCode::ResourceAlreadyExists);
    assert_eq!(
        store.get_experiment("999").await.expect_err("missing").code,
        ErrorCode::ResourceDoesNotExist
    );

    store
        .set_experiment_tag(&id, Tag::new("team", "a"))
        .await
        .expect("tag");
    store
        .set_experiment_tag(&id, Tag::new("team", "b"))
        .await
        .expect("upsert tag");
    assert_eq!(
        store.get_experiment(&id).await.expect("get").tags,
        vec![Tag::new("team", "b")]
    );
    store
        .delete_experiment_tag(&id, "team")
        .await
        .expect("delete tag");
    let missing = store
        .delete_experiment_tag(&id, "team")
        .await
        .expect_err("missing tag");
    assert_eq!(missing.code, ErrorCode::ResourceDoesNotExist);

    let r = run(&store, &id, "r1").await;
    store.delete_experiment(&id).await.expect("delete");
    assert_eq!(
        store
            .get_experiment(&id)
            .await
            .expect("still readable")
            .lifecycle_stage,
        LifecycleStage::Deleted
    );
    assert_eq!(
        store.get_run(&r).await.expect("run").info.lifecycle_stage,
        LifecycleStage::Deleted
    );
    assert!(
        store.rename_experiment(&id, "x").await.is_err(),
        "renaming a deleted experiment"
    );
    assert!(store
        .set_experiment_tag(&id, Tag::new("k", "v"))
        .await
        .is_err());
    let taken = store
        .create_experiment(NewExperiment {
            name: "exp-a".into(),
            ..Default::default()
        })
        .await
        .expect_err("name stays taken while deleted");
    assert_eq!(taken.code, ErrorCode::ResourceAlreadyExists);
    store.restore_experiment(&id).await.expect("restore");
    assert_eq!(
        store.get_run(&r).await.expect("run").info.lifecycle_stage,
        LifecycleStage::Active
    );
    assert!(
        store.restore_experiment(&id).await.is_err(),
        "restoring an active experiment"
    );

    store.rename_experiment(&id, "exp-b").await.expect("rename");
    assert!(store.get_experiment_by_name("exp-a").await.is_err());
    let explicit = store
        .create_experiment(NewExperiment {
            name: "explicit".into(),
            artifact_location: Some("/tmp/somewhere".into()),
            tags: vec![Tag::new("k", "v")],
        })
        .await
        .expect("explicit location");
    let e = store.get_experiment(&explicit).await.expect("get");
    assert_eq!(e.artifact_location, "/tmp/somewhere");
    assert_eq!(e.tags, vec![Tag::new("k", "v")]);
}

pub async fn experiment_search(store: Store) {
    for name in ["alpha", "beta", "gamma"] {
        experiment(&store, name).await;
    }
    let gamma = store
        .get_experiment_by_name("gamma")
        .await
        .expect("gamma")
        .experiment_id;
    store
        .set_experiment_tag(&gamma, Tag::new("team", "ml"))
        .await
        .expect("tag");
    let search =
        |filter: &str, order: &[&str], view: ViewType, max: i64, offset: i64| ExperimentQuery {
            filter: parse_filter(Domain::Experiments, filter).expect("filter"),
            order_by: parse_order_by(
                Domain::Experiments,
                &order.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
            .expect("order"),
            view_type: view,
            max_results: max,
            offset,
        };
    let page = store
        .search_experiments(search(
            "name LIKE '%a'",
            &["name DESC"],
            ViewType::All,
            10,
            0,
        ))
        .await
        .expect("search");
    let got: Vec<_> = page.items.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(got, ["gamma", "beta", "alpha"]);
    let page = store
        .search_experiments(search("tags.team = 'ml'", &[], ViewType::ActiveOnly, 10, 0))
        .await
        .expect("tags");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].tags, vec![Tag::new("team", "ml")]);
    let page = store
        .search_experiments(search("", &["name ASC"], ViewType::ActiveOnly, 2, 0))
        .await
        .expect("page 1");
    assert_eq!(page.items.len(), 2);
    let token = page.next_page_token.expect("more pages");
    let offset = plumb_core::validation::decode_offset_token(Some(&token)).expect("token");
    let page2 = store
        .search_experiments(search("", &["name ASC"], ViewType::ActiveOnly, 2, offset))
        .await
        .expect("page 2");
    assert_eq!(page2.items.len(), 2);
    assert!(page2.next_page_token.is_none());
    store.delete_experiment(&gamma).await.expect("delete");
    let deleted = store
        .search_experiments(search("", &[], ViewType::DeletedOnly, 10, 0))
        .await
        .expect("deleted");
    assert_eq!(deleted.items.len(), 1);
    assert_eq!(deleted.items[0].name, "gamma");
}

pub async fn run_lifecycle(store: Store) {
    let exp = experiment(&store, "runs").await;
    let r = run(&store, &exp, "first").await;
    let got = store.get_run(&r).await.expect("get");
    assert_eq!(got.info.run_name, "first");
    assert_eq!(got.info.status, RunStatus::Running);
    assert_eq!(got.info.start_time, Some(1000));
    assert!(got.info.artifact_uri.ends_with(&format!("{r}/artifacts")));
    assert!(got
        .data
        .tags
        .contains(&Tag::new(crate::RUN_NAME_TAG, "first")));

    let unnamed = store
        .create_run(NewRun {
            experiment_id: exp.clone(),
            ..Default::default()
        })
        .await
        .expect("unnamed");
    assert!(!unnamed.info.run_name.is_empty());
    assert!(unnamed
        .data
        .tags
        .iter()
        .any(|t| t.key == crate::RUN_NAME_TAG && t.value == unnamed.info.run_name));
    let clash = store
        .create_run(NewRun {
            experiment_id: exp.clone(),
            run_name: Some("a".into()),
            tags: vec![Tag::new(crate::RUN_NAME_TAG, "b")],
            ..Default::default()
        })
        .await
        .expect_err("run_name and tag differ");
    assert_eq!(clash.code, ErrorCode::InvalidParameterValue);
    assert_eq!(
        store
            .create_run(NewRun {
                experiment_id: "4242".into(),
                ..Default::default()
            })
            .await
            .expect_err("no exp")
            .code,
        ErrorCode::ResourceDoesNotExist
    );

    let info = store
        .update_run(
            &r,
            RunUpdate {
                status: Some(RunStatus::Finished),
                end_time: Some(2000),
                run_name: Some("renamed".into()),
            },
        )
        .await
        .expect("update");
    assert_eq!(
        (info.status, info.end_time, info.run_name.as_str()),
        (RunStatus::Finished, Some(2000), "renamed")
    );
    log(
        &store,
        &r,
        vec![],
        vec![],
        vec![Tag::new(crate::RUN_NAME_TAG, "via-tag")],
    )
    .await;
    assert_eq!(
        store.get_run(&r).await.expect("get").info.run_name,
        "via-tag"
    );

    store.delete_run(&r).await.expect("delete");
    assert_eq!(
        store
            .get_run(&r)
            .await
            .expect("deleted is readable")
            .info
            .lifecycle_stage,
        LifecycleStage::Deleted
    );
    let e = store
        .log_batch(
            &r,
            Batch {
                metrics: vec![metric("m", 1.0, 1, 0)],
                ..Default::default()
            },
        )
        .await
        .expect_err("deleted run");
    assert_eq!(e.code, ErrorCode::InvalidParameterValue);
    assert!(
        e.message.contains("must be in the 'active' state"),
        "{}",
        e.message
    );
    store.restore_run(&r).await.expect("restore");
    log(&store, &r, vec![metric("m", 1.0, 1, 0)], vec![], vec![]).await;
    store
        .delete_tag(&r, crate::RUN_NAME_TAG)
        .await
        .expect("delete tag");
    assert_eq!(
        store
            .delete_tag(&r, "nope")
            .await
            .expect_err("missing")
            .code,
        ErrorCode::ResourceDoesNotExist
    );
    assert_eq!(
        store
            .get_run("0123456789abcdef")
            .await
            .expect_err("missing")
            .code,
        ErrorCode::ResourceDoesNotExist
    );
}

pub async fn params_are_immutable_and_batches_atomic(store: Store) {
    let exp = experiment(&store, "params").await;
    let r = run(&store, &exp, "p").await;
    log(&store, &r, vec![], vec![Param::new("lr", "0.1")], vec![]).await;
    log(&store, &r, vec![], vec![Param::new("lr", "0.1")], vec![]).await; // same value: fine
    let e = store
        .log_batch(
            &r,
            Batch {
                params: vec![Param::new("lr", "0.2")],
                ..Default::default()
            },
        )
        .await
        .expect_err("changed param");
    assert!(
        e.message.contains("Changing param values is not allowed"),
        "{}",
        e.message
    );
    // A batch whose param conflicts writes nothing at all.
    let e = store
        .log_batch(
            &r,
            Batch {
                metrics: vec![metric("loss", 1.0, 1, 0)],
                params: vec![Param::new("new", "x"), Param::new("lr", "0.3")],
                tags: vec![Tag::new("t", "v")],
            },
        )
        .await
        .expect_err("conflict");
    assert_eq!(e.code, ErrorCode::InvalidParameterValue);
    let got = store.get_run(&r).await.expect("get");
    assert_eq!(got.data.params, vec![Param::new("lr", "0.1")]);
    assert!(got.data.metrics.is_empty());
    assert!(!got.data.tags.iter().any(|t| t.key == "t"));
    // Params and tags list in the order they were first logged, not by key, across batches;
    // a tag set again keeps its place.
    let kv = |pairs: &[&str]| pairs.iter().map(|k| Tag::new(*k, "v")).collect::<Vec<_>>();
    log(&store, &r, vec![], kv(&["zeta", "alpha"]), kv(&["z", "a"])).await;
    log(&store, &r, vec![], kv(&["mid"]), kv(&["m", "z"])).await;
    let keys = |kvs: &[Tag]| kvs.iter().map(|t| t.key.clone()).collect::<Vec<_>>();
    let user_tags = |run: &plumb_core::entities::Run| {
        keys(&run.data.tags)
            .into_iter()
            .filter(|k| !k.starts_with("mlflow."))
            .collect::<Vec<_>>()
    };
    let got = store.get_run(&r).await.expect("get");
    assert_eq!(keys(&got.data.params), ["lr", "zeta", "alpha", "mid"]);
    assert_eq!(user_tags(&got), ["z", "a", "m"]);
    let found = store
        .search_runs(query(&exp, "params.mid = 'v'", &[]))
        .await
        .expect("search");
    assert_eq!(
        keys(&found.items[0].data.params),
        ["lr", "zeta", "alpha", "mid"]
    );
    assert_eq!(user_tags(&found.items[0]), ["z", "a", "m"]);
}

pub async fn latest_metric_rules(store: Store) {
    let exp = experiment(&store, "latest").await;
    let r = run(&store, &exp, "m").await;
    log(
        &store,
        &r,
        vec![metric("loss", 5.0, 100, 5), metric("loss", 9.0, 50, 1)],
        vec![],
        vec![],
    )
    .await;
    log(&store, &r, vec![metric("loss", 3.0, 90, 5)], vec![], vec![]).await; // same step, older ts
    let latest = store.get_run(&r).await.expect("get").data.metrics;
    assert_eq!(latest.len(), 1);
    assert_eq!(
        (latest[0].value, latest[0].step, latest[0].timestamp),
        (5.0, 5, 100)
    );
    log(&store, &r, vec![metric("loss", 1.0, 10, 6)], vec![], vec![]).await; // higher step wins
    let latest = store.get_run(&r).await.expect("get").data.metrics;
    assert_eq!((latest[0].value, latest[0].step), (1.0, 6));

    log(
        &store,
        &r,
        vec![
            metric("nan", f64::NAN, 1, 0),
            metric("inf", f64::INFINITY, 1, 0),
            metric("ninf", f64::NEG_INFINITY, 1, 0),
        ],
        vec![],
        vec![],
    )
    .await;
    let run = store.get_run(&r).await.expect("get");
    let value = |k: &str| run.data.metrics.iter().find(|m| m.key == k).expect(k).value;
    assert!(value("nan").is_nan());
    assert_eq!(value("inf"), f64::MAX);
    assert_eq!(value("ninf"), -f64::MAX);

    // An identical point is stored once.
    log(
        &store,
        &r,
        vec![metric("dup", 1.0, 1, 1), metric("dup", 1.0, 1, 1)],
        vec![],
        vec![],
    )
    .await;
    log(&store, &r, vec![metric("dup", 1.0, 1, 1)], vec![], vec![]).await;
    let hist = store
        .metric_history(&r, "dup", 0, None)
        .await
        .expect("history");
    assert_eq!(hist.items.len(), 1);
    let nan_hist = store
        .metric_history(&r, "nan", 0, None)
        .await
        .expect("nan history");
    assert!(nan_hist.items[0].value.is_nan());
}

pub async fn metric_history_pages(store: Store) {
    let exp = experiment(&store, "history").await;
    let r = run(&store, &exp, "h").await;
    let points: Vec<Metric> = (0..25)
        .map(|i| metric("acc", i as f64, 1000 + i, i))
        .collect();
    log(&store, &r, points, vec![], vec![]).await;
    let all = store.metric_history(&r, "acc", 0, None).await.expect("all");
    assert_eq!(all.items.len(), 25);
    assert!(all.next_page_token.is_none());
    assert!(all
        .items
        .windows(2)
        .all(|w| w[0].timestamp <= w[1].timestamp));
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .metric_history(&r, "acc", offset, Some(10))
            .await
            .expect("page");
        seen.extend(page.items.iter().map(|m| m.step));
        match page.next_page_token {
            Some(t) => {
                offset = plumb_core::validation::decode_offset_token(Some(&t)).expect("token")
            }
            None => break,
        }
    }
    assert_eq!(seen, (0..25).collect::<Vec<_>>());
    assert!(store
        .metric_history(&r, "missing", 0, None)
        .await
        .expect("empty")
        .items
        .is_empty());
    assert!(store
        .metric_history("00000000000000000000000000000000", "acc", 0, None)
        .await
        .expect("unknown run")
        .items
        .is_empty());
    let bulk = store
        .metric_history_bulk(vec![r.clone(), r.clone()], "acc", 7)
        .await
        .expect("bulk");
    assert_eq!(bulk.len(), 7);
    assert!(bulk.iter().all(|p| p.run_id == r));
}

pub async fn run_search_filters_and_order(store: Store) {
    let exp = experiment(&store, "search").await;
    let a = run(&store, &exp, "a").await;
    let b = run(&store, &exp, "b").await;
    let c = run(&store, &exp, "c").await;
    log(
        &store,
        &a,
        vec![metric("acc", 0.9, 1, 0)],
        vec![Param::new("model", "rf")],
        vec![Tag::new("env", "prod")],
    )
    .await;
    log(
        &store,
        &b,
        vec![metric("acc", 0.5, 1, 0)],
        vec![Param::new("model", "lr")],
        vec![Tag::new("env", "Dev")],
    )
    .await;
    log(
        &store,
        &c,
        vec![metric("acc", f64::NAN, 1, 0)],
        vec![],
        vec![],
    )
    .await;

    assert_eq!(
        names(&store, query(&exp, "metrics.acc > 0.6", &[])).await,
        ["a"]
    );
    assert_eq!(
        names(
            &store,
            query(&exp, "metrics.acc != 0.5", &["attributes.run_name"])
        )
        .await,
        ["a", "c"]
    );
    assert_eq!(
        names(&store, query(&exp, "params.model = 'lr'", &[])).await,
        ["b"]
    );
    assert_eq!(
        names(&store, query(&exp, "params.model != 'lr'", &[])).await,
        ["a"]
    );
    assert_eq!(
        names(&store, query(&exp, "params.model IS NULL", &[])).await,
        ["c"]
    );
    assert_eq!(
        names(&store, query(&exp, "tags.env LIKE 'D%'", &[])).await,
        ["b"]
    );
    assert_eq!(
        names(&store, query(&exp, "tags.env LIKE 'd%'", &[])).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&store, query(&exp, "tags.env ILIKE 'd%'", &[])).await,
        ["b"]
    );
    assert_eq!(
        names(&store, query(&exp, "attributes.run_name = 'c'", &[])).await,
        ["c"]
    );
    assert_eq!(
        names(
            &store,
            query(
                &exp,
                &format!("run_id IN ('{a}', '{b}')"),
                &["run_name DESC"]
            )
        )
        .await,
        ["b", "a"]
    );
    assert_eq!(
        names(
            &store,
            query(&exp, "metrics.acc > 0.1 and params.model = 'rf'", &[])
        )
        .await,
        ["a"]
    );
    assert_eq!(
        names(
            &store,
            query(&exp, "attributes.status = 'RUNNING'", &["run_name"])
        )
        .await,
        ["a", "b", "c"]
    );
    // Filters rendered as joins (metric comparisons, param and tag equalities) beside
    // clauses left in the WHERE and keys ordered by a metric and a param: every bind in its
    // place.
    assert_eq!(
        names(
            &store,
            query(
                &exp,
                "params.model != 'xx' and metrics.acc >= 0.5 and tags.env = 'prod' \
                 and params.model = 'rf' and attributes.run_name != 'b'",
                &["metrics.acc DESC", "params.model ASC"]
            )
        )
        .await,
        ["a"]
    );
    assert_eq!(
        names(
            &store,
            query(
                &exp,
                "tags.env ILIKE '%e%' and metrics.acc < 1 and metrics.acc != 0.9",
                &["metrics.acc DESC"]
            )
        )
        .await,
        ["b"]
    );
    assert_eq!(
        names(
            &store,
            query(&exp, "metrics.acc = 0.5 and params.model = 'rf'", &[])
        )
        .await,
        Vec::<String>::new()
    );
    // Present values first, then NaN, then missing, for both directions.
    let d = run(&store, &exp, "d").await;
    let _ = d;
    assert_eq!(
        names(&store, query(&exp, "", &["metrics.acc DESC"])).await,
        ["a", "b", "c", "d"]
    );
    assert_eq!(
        names(&store, query(&exp, "", &["metrics.acc ASC"])).await,
        ["b", "a", "c", "d"]
    );
    assert_eq!(
        names(&store, query(&exp, "", &["params.model ASC"])).await[..2],
        ["b", "a"]
    );
    store.delete_run(&b).await.expect("delete");
    assert_eq!(
        names(&store, query(&exp, "params.model = 'lr'", &[])).await,
        Vec::<String>::new()
    );
    let mut deleted = query(&exp, "", &[]);
    deleted.view_type = ViewType::DeletedOnly;
    assert_eq!(names(&store, deleted).await, ["b"]);
    let mut unknown = query(&exp, "", &[]);
    unknown.experiment_ids = vec!["987654".into()];
    assert!(names(&store, unknown).await.is_empty());
}

pub async fn run_search_pagination(store: Store) {
    let exp = experiment(&store, "pages").await;
    for i in 0..7 {
        run(&store, &exp, &format!("r{i}")).await;
    }
    let mut q = query(&exp, "", &["attributes.run_name ASC"]);
    q.max_results = 3;
    let mut seen = Vec::new();
    loop {
        let page = store.search_runs(q.clone()).await.expect("page");
        seen.extend(page.items.into_iter().map(|r| r.info.run_name));
        match page.next_page_token {
            Some(t) => {
                q.offset = plumb_core::validation::decode_offset_token(Some(&t)).expect("token")
            }
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("r{i}")).collect::<Vec<_>>());
}

/// Long batches are stored many points per statement: a batch overlapping stored points, or
/// repeating one, still stores each new point once and keeps the series' shape (what history
/// and sampling rely on), exactly as the same points logged ten at a time.
pub async fn long_batches_store_each_point_once(store: Store) {
    let exp = experiment(&store, "long batches").await;
    let points = |steps: std::ops::Range<i64>| -> Vec<Metric> {
        steps
            .map(|s| metric("loss", s as f64, 1_000 + s, s))
            .collect()
    };
    let (long, short) = (
        run(&store, &exp, "long").await,
        run(&store, &exp, "short").await,
    );
    let history = |r: String| {
        let store = store.clone();
        async move {
            let mut rows: Vec<(i64, i64, u64)> = store
                .metric_history(&r, "loss", 0, None)
                .await
                .expect("history")
                .items
                .iter()
                .map(|m| (m.step, m.timestamp, m.value.to_bits()))
                .collect();
            rows.sort_unstable();
            rows
        }
    };
    let sample = |r: String, max_results: usize| {
        let store = store.clone();
        async move {
            store
                .metric_history_bulk_interval(IntervalQuery {
                    run_ids: vec![r],
                    metric_key: "loss".into(),
                    steps: None,
                    max_results,
                })
                .await
                .expect("sample")
                .iter()
                .map(|p| (p.metric.step, p.metric.timestamp))
                .collect::<Vec<_>>()
        }
    };
    let mut batches = vec![
        points(0..300),
        // Steps 200..300 are stored already, and step 450 comes twice.
        points(200..600),
        // Ends in a few points stored one by one, one of them a repeat.
        points(600..650),
        // A second point at a stored step, in a long batch that repeats stored points: the series
        // is no longer one point per step.
        points(500..700),
    ];
    batches[1].insert(300, metric("loss", 450.0, 1_450, 450));
    batches[2].push(metric("loss", 649.0, 1_649, 649));
    batches[3].insert(40, metric("loss", -1.0, 5_000, 520));
    let mut stored = 0;
    for (stage, batch) in batches.into_iter().enumerate() {
        log(&store, &long, batch.clone(), vec![], vec![]).await;
        for ten in batch.chunks(10) {
            log(&store, &short, ten.to_vec(), vec![], vec![]).await;
        }
        let rows = history(long.clone()).await;
        assert_eq!(rows, history(short.clone()).await, "stage {stage}");
        assert!(rows.len() > stored, "stage {stage}");
        stored = rows.len();
        for max in [7, 100] {
            let got = sample(long.clone(), max).await;
            assert_eq!(
                got,
                sample(short.clone(), max).await,
                "stage {stage}, {max} samples"
            );
        }
    }
    assert_eq!(stored, 701);
}

pub async fn bulk_interval_sampling(store: Store) {
    let exp = experiment(&store, "interval").await;
    let r = run(&store, &exp, "long").await;
    for chunk in (0..3000i64).collect::<Vec<_>>().chunks(1000) {
        let points = chunk
            .iter()
            .map(|&s| metric("loss", s as f64, 10_000 + s, s))
            .collect();
        log(&store, &r, points, vec![], vec![]).await;
    }
    let q = |steps: Option<(i64, i64)>, max: usize| IntervalQuery {
        run_ids: vec![r.clone()],
        metric_key: "loss".into(),
        steps,
        max_results: max,
    };
    let got = store
        .metric_history_bulk_interval(q(None, 100))
        .await
        .expect("sample");
    // MLflow's sampling: 100 NTILE buckets of 30 rows, first row of each, the last row kept.
    let steps: Vec<i64> = got.iter().map(|p| p.metric.step).collect();
    let mut want: Vec<i64> = (0..99).map(|k| k * 30).collect();
    want.push(2999);
    assert_eq!(steps, want);
    // 3000 rows in 7 buckets (429 x 4, then 428 x 3): bucket starts, then the last row.
    let got = store
        .metric_history_bulk_interval(q(None, 7))
        .await
        .expect("sample 7");
    let steps: Vec<i64> = got.iter().map(|p| p.metric.step).collect();
    assert_eq!(steps, [0, 429, 858, 1287, 1716, 2144, 2999]);
    // Two points per step (not one per step): rows, not steps, are bucketed.
    let points = (0..40)
        .map(|i| metric("pairs", i as f64, i, i / 2))
        .collect();
    log(&store, &r, points, vec![], vec![]).await;
    let pairs = IntervalQuery {
        run_ids: vec![r.clone()],
        metric_key: "pairs".into(),
        steps: None,
        max_results: 5,
    };
    let got = store
        .metric_history_bulk_interval(pairs)
        .await
        .expect("pairs");
    let rows: Vec<(i64, f64)> = got
        .iter()
        .map(|p| (p.metric.step, p.metric.value))
        .collect();
    assert_eq!(
        rows,
        [(0, 0.0), (4, 8.0), (8, 16.0), (12, 24.0), (19, 39.0)]
    );
    let ranged = store
        .metric_history_bulk_interval(q(Some((100, 149)), 100))
        .await
        .expect("range");
    assert_eq!(ranged.len(), 50);
    assert_eq!(ranged[0].metric.step, 100);
    let one = store
        .metric_history_bulk_interval(q(None, 1))
        .await
        .expect("one");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].metric.step, 2999);
}

pub async fn datasets_and_outputs(store: Store) {
    let exp = experiment(&store, "datasets").await;
    let r = run(&store, &exp, "d").await;
    let input = DatasetInput {
        tags: vec![
            Tag::new(crate::DATASET_CONTEXT_TAG, "training"),
            Tag::new("b", "2"),
            Tag::new("a", "1"),
        ],
        dataset: Dataset {
            name: "iris".into(),
            digest: "abc123".into(),
            source_type: "local".into(),
            source: "{\"uri\": \"x\"}".into(),
            schema: Some("{}".into()),
            profile: None,
        },
    };
    store
        .log_inputs(&r, vec![input.clone()], vec!["m-1".into()])
        .await
        .expect("inputs");
    store
        .log_inputs(&r, vec![input.clone()], vec![])
        .await
        .expect("again: no new edge");
    let got = store.get_run(&r).await.expect("get");
    assert_eq!(got.inputs.dataset_inputs, vec![input]);
    assert_eq!(got.inputs.model_inputs, vec!["m-1".to_string()]);
    let summaries = store
        .search_datasets(vec![exp.clone()])
        .await
        .expect("summaries");
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].context.as_deref(), Some("training"));
    assert_eq!(
        names(&store, query(&exp, "datasets.name = 'iris'", &[])).await,
        ["d"]
    );
    assert_eq!(
        names(&store, query(&exp, "datasets.context = 'training'", &[])).await,
        ["d"]
    );
    assert!(names(&store, query(&exp, "datasets.digest = 'zzz'", &[]))
        .await
        .is_empty());
    store
        .log_outputs(
            &r,
            vec![ModelOutput {
                model_id: "m-2".into(),
                step: 3,
            }],
        )
        .await
        .expect("outputs");
    assert_eq!(
        store.get_run(&r).await.expect("get").outputs,
        vec![ModelOutput {
            model_id: "m-2".into(),
            step: 3
        }]
    );
}

pub async fn logged_models(store: Store) {
    let exp = experiment(&store, "models").await;
    let r = run(&store, &exp, "train").await;
    let m = store
        .create_logged_model(NewLoggedModel {
            experiment_id: exp.clone(),
            name: Some("model".into()),
            source_run_id: Some(r.clone()),
            params: vec![Param::new("n", "50")],
            tags: vec![Tag::new("mlflow.user", "me")],
            ..Default::default()
        })
        .await
        .expect("create");
    assert!(m.model_id.starts_with("m-"));
    assert_eq!(m.status, LoggedModelStatus::Pending);
    assert!(m
        .artifact_uri
        .ends_with(&format!("models/{}/artifacts", m.model_id)));
    let mut linked = metric("acc", 0.9, 5, 0);
    linked.model_id = Some(m.model_id.clone());
    linked.dataset_name = Some("eval".into());
    linked.dataset_digest = Some("d1".into());
    log(&store, &r, vec![linked.clone()], vec![], vec![]).await;
    log(&store, &r, vec![linked], vec![], vec![]).await;
    let ready = store
        .finalize_logged_model(&m.model_id, LoggedModelStatus::Ready)
        .await
        .expect("finalize");
    assert_eq!(ready.status, LoggedModelStatus::Ready);
    assert_eq!(ready.metrics.len(), 1);
    assert_eq!(ready.metrics[0].run_id, r);
    assert_eq!(
        store
            .metric_history(&r, "acc", 0, None)
            .await
            .expect("history")
            .items
            .len(),
        1
    );
    store
        .set_logged_model_tags(&m.model_id, vec![Tag::new("stage", "x")])
        .await
        .expect("tags");
    store
        .delete_logged_model_tag(&m.model_id, "stage")
        .await
        .expect("delete tag");
    assert_eq!(
        store
            .delete_logged_model_tag(&m.model_id, "stage")
            .await
            .expect_err("missing")
            .code,
        ErrorCode::ResourceDoesNotExist
    );
    store
        .log_logged_model_params(&m.model_id, vec![Param::new("depth", "3")])
        .await
        .expect("params");
    let search = |filter: &str| LoggedModelQuery {
        experiment_ids: vec![exp.clone()],
        filter: parse_filter(Domain::LoggedModels, filter).expect("filter"),
        order_by: vec![],
        max_results: 100,
        offset: 0,
        datasets: vec![],
    };
    let found = store
        .search_logged_models(search("name = 'model'"))
        .await
        .expect("search");
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].params.len(), 2);
    assert_eq!(
        store
            .search_logged_models(search("metrics.acc > 0.5"))
            .await
            .expect("metric")
            .items
            .len(),
        1
    );
    assert_eq!(
        store
            .search_logged_models(search("status = 'LOGGED_MODEL_READY'"))
            .await
            .expect("status")
            .items
            .len(),
        1
    );
    // A second model without metrics must not match a metric filter of the first.
    store
        .create_logged_model(NewLoggedModel {
            experiment_id: exp.clone(),
            name: Some("bare".into()),
            ..Default::default()
        })
        .await
        .expect("second model");
    let by_metric = store
        .search_logged_models(search("metrics.acc > 0.5"))
        .await
        .expect("metric");
    assert_eq!(
        by_metric
            .items
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["model"]
    );
    // `datasets`: models with a metric logged for one of them (the digest when given).
    for (datasets, expected) in [
        (vec![("eval", None)], vec![]),
        (vec![("eval", Some("d1"))], vec!["model"]),
        (vec![("eval", Some("other"))], vec![]),
        (vec![("train", None), ("eval", Some("d1"))], vec!["model"]),
        (vec![("train", None)], vec![]),
    ] {
        let mut q = search("");
        q.datasets = datasets
            .iter()
            .map(|(n, d)| (n.to_string(), d.map(str::to_string)))
            .collect();
        let names: Vec<String> = store
            .search_logged_models(q)
            .await
            .expect("by dataset")
            .items
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, expected, "{datasets:?}");
    }
    let by_tag = store
        .search_logged_models(search("tags.mlflow.user = 'me'"))
        .await
        .expect("tag");
    assert_eq!(by_tag.items.len(), 1);
    assert!(store
        .search_logged_models(search("name = 'other'"))
        .await
        .expect("none")
        .items
        .is_empty());
    store
        .delete_logged_model(&m.model_id)
        .await
        .expect("delete");
    assert_eq!(
        store
            .get_logged_model(&m.model_id, false)
            .await
            .expect_err("hidden")
            .code,
        ErrorCode::ResourceDoesNotExist
    );
    assert!(store.get_logged_model(&m.model_id, true).await.is_ok());
}

pub async fn concurrent_writers_lose_nothing(store: Store) {
    let exp = experiment(&store, "concurrent").await;
    let r = run(&store, &exp, "c").await;
    let mut tasks = Vec::new();
    for w in 0..32i64 {
        let (store, r) = (store.clone(), r.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25i64 {
                let step = w * 100 + i;
                store
                    .log_batch(
                        &r,
                        Batch {
                            metrics: vec![metric("x", step as f64, step, step)],
                            ..Default::default()
                        },
                    )
                    .await
                    .expect("concurrent write");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let hist = store
        .metric_history(&r, "x", 0, None)
        .await
        .expect("history");
    assert_eq!(hist.items.len(), 32 * 25);
    let latest = store.get_run(&r).await.expect("get").data.metrics;
    assert_eq!(latest[0].step, 31 * 100 + 24);
}

/// Writes that arrive together (and may share a transaction) are answered one by one: a bad
/// request fails alone, with its own error, and writes nothing; its neighbours are stored.
/// Even rounds mix params and tags in; odd rounds log metrics only (a backend may have a
/// metrics-only path).
pub async fn concurrent_bad_requests_fail_alone(store: Store) {
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Kind {
        ConflictingParam,
        MissingRun,
        DeletedRun,
        Other,
        Good,
    }
    let kind = |round: i64, w: i64| match w % 6 {
        0 if round % 2 == 0 => Kind::ConflictingParam,
        1 => Kind::MissingRun,
        2 => Kind::DeletedRun,
        3 => Kind::Other,
        _ => Kind::Good,
    };
    let exp = experiment(&store, "neighbours").await;
    let good = run(&store, &exp, "good").await;
    let other = run(&store, &exp, "other").await;
    let gone = run(&store, &exp, "gone").await;
    store.delete_run(&gone).await.expect("delete");
    log(
        &store,
        &good,
        vec![],
        vec![Param::new("fixed", "1")],
        vec![],
    )
    .await;
    for round in 0..6i64 {
        let barrier = Arc::new(tokio::sync::Barrier::new(24));
        let mut tasks = Vec::new();
        for w in 0..24i64 {
            let (store, barrier) = (store.clone(), barrier.clone());
            let (good, other, gone) = (good.clone(), other.clone(), gone.clone());
            let k = kind(round, w);
            tasks.push(tokio::spawn(async move {
                let step = round * 100 + w;
                let target = match k {
                    Kind::MissingRun => "0123456789abcdef0123456789abcdef".to_string(),
                    Kind::DeletedRun => gone,
                    Kind::Other => other,
                    Kind::ConflictingParam | Kind::Good => good,
                };
                let mut batch = Batch {
                    metrics: vec![metric("x", step as f64, step, step)],
                    ..Default::default()
                };
                if round % 2 == 0 {
                    batch.params = vec![if k == Kind::ConflictingParam {
                        Param::new("fixed", "2")
                    } else {
                        Param::new(format!("p{step}"), "v")
                    }];
                    batch.tags = vec![Tag::new("writer", format!("{step}"))];
                }
                barrier.wait().await;
                (k, step, store.log_batch(&target, batch).await)
            }));
        }
        for t in tasks {
            let (k, step, got) = t.await.expect("task");
            match k {
                Kind::ConflictingParam => {
                    let e = got.expect_err("conflicting param");
                    assert_eq!(e.code, ErrorCode::InvalidParameterValue, "{}", e.message);
                    assert!(e.message.contains("fixed"), "{}", e.message);
                }
                Kind::MissingRun => {
                    let e = got.expect_err("missing run");
                    assert_eq!(e.code, ErrorCode::ResourceDoesNotExist, "{}", e.message);
                }
                Kind::DeletedRun => {
                    let e = got.expect_err("deleted run");
                    assert_eq!(e.code, ErrorCode::InvalidParameterValue);
                    assert!(e.message.contains("'active' state"), "{}", e.message);
                }
                Kind::Other | Kind::Good => {
                    got.unwrap_or_else(|e| panic!("good write {step} failed: {}", e.message))
                }
            }
        }
    }
    let steps = |run: &str| {
        let (store, run) = (store.clone(), run.to_string());
        async move {
            let mut s: Vec<i64> = store
                .metric_history(&run, "x", 0, None)
                .await
                .expect("history")
                .items
                .iter()
                .map(|m| m.step)
                .collect();
            s.sort_unstable();
            s
        }
    };
    // The steps of the requests that pass `pick(kind, round)`.
    let expect = |pick: &dyn Fn(Kind, i64) -> bool| {
        let mut s: Vec<i64> = (0..6i64)
            .flat_map(|round| (0..24i64).map(move |w| (round, w)))
            .filter(|&(round, w)| pick(kind(round, w), round))
            .map(|(round, w)| round * 100 + w)
            .collect();
        s.sort_unstable();
        s
    };
    assert_eq!(steps(&good).await, expect(&|k, _| k == Kind::Good));
    assert_eq!(steps(&other).await, expect(&|k, _| k == Kind::Other));
    assert!(steps(&gone).await.is_empty());
    let got = store.get_run(&good).await.expect("get");
    let with_params = expect(&|k, round| k == Kind::Good && round % 2 == 0);
    assert_eq!(got.data.params.len(), 1 + with_params.len());
    assert!(got.data.params.contains(&Param::new("fixed", "1")));
    let latest = got.data.metrics.iter().find(|m| m.key == "x").expect("x");
    assert_eq!(latest.step, 5 * 100 + 23);
    let writer = got.data.tags.iter().find(|t| t.key == "writer");
    let writer = writer.expect("tag").value.parse::<i64>().expect("number");
    assert!(with_params.contains(&writer), "{writer}");
}

fn version(name: &str, source: &str) -> NewModelVersion {
    NewModelVersion {
        name: name.into(),
        source: source.into(),
        ..Default::default()
    }
}

pub async fn registry_history_of_aliases_and_stages(store: Store) {
    store
        .create_registered_model("hist", vec![], None)
        .await
        .expect("create");
    for i in 1..=3 {
        store
            .create_model_version(version("hist", &format!("s3://b/m{i}")))
            .await
            .expect("mv");
    }
    let ok = |r: plumb_core::Result<()>| r.expect("registry change");
    ok(store.set_alias("hist", "champion", 1).await);
    ok(store.set_alias("hist", "champion", 1).await); // unchanged: nothing recorded
    ok(store.set_alias("hist", "champion", 2).await);
    ok(store.delete_alias("hist", "champion").await);
    ok(store.delete_alias("hist", "ghost").await); // not set: nothing recorded
    ok(store.set_alias("hist", "challenger", 3).await);
    let stage = |v, s, archive| store.transition_stage("hist", v, s, archive);
    stage(1, Stage::Staging, false).await.expect("stage");
    stage(1, Stage::Staging, false).await.expect("same stage"); // unchanged
    stage(2, Stage::Production, false).await.expect("stage");
    stage(3, Stage::Production, true)
        .await
        .expect("archive others");
    ok(store.delete_model_version("hist", 3).await);
    use ChangeKind as K;
    let expected = vec![
        (1, K::AliasSet("champion".into())),
        (2, K::AliasSet("champion".into())),
        (2, K::AliasRemoved("champion".into())),
        (3, K::AliasSet("challenger".into())),
        (1, K::Stage("Staging".into())),
        (2, K::Stage("Production".into())),
        (2, K::Stage("Archived".into())),
        (3, K::Stage("Production".into())),
        (3, K::AliasRemoved("challenger".into())),
    ];
    let got = store.registry_changes("hist", 100).await.expect("changes");
    let shape: Vec<(i64, ChangeKind)> = got.iter().map(|c| (c.version, c.kind.clone())).collect();
    assert_eq!(shape, expected);
    assert!(got.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    assert!(got[0].time_ms > 1_600_000_000_000, "a wall-clock time");
    // The newest `max`, still oldest first.
    let last = store.registry_changes("hist", 2).await.expect("newest two");
    assert_eq!(last, got[7..].to_vec());
    // The history follows a rename and goes with a delete.
    store
        .rename_registered_model("hist", "hist2")
        .await
        .expect("rename");
    assert_eq!(
        store.registry_changes("hist2", 100).await.expect("renamed"),
        got
    );
    let gone = store
        .registry_changes("hist", 100)
        .await
        .expect_err("old name");
    assert_eq!(gone.code, ErrorCode::ResourceDoesNotExist);
    ok(store.delete_registered_model("hist2").await);
    store
        .create_registered_model("hist2", vec![], None)
        .await
        .expect("same name again");
    assert!(store
        .registry_changes("hist2", 100)
        .await
        .expect("new")
        .is_empty());
}

pub async fn registry_lifecycle(store: Store) {
    let rm = store
        .create_registered_model("churn", vec![Tag::new("team", "ml")], Some("desc".into()))
        .await
        .expect("create");
    assert_eq!(
        (rm.name.as_str(), rm.description.as_str()),
        ("churn", "desc")
    );
    let dup = store
        .create_registered_model("churn", vec![], None)
        .await
        .expect_err("dup");
    assert_eq!(dup.code, ErrorCode::ResourceAlreadyExists);
    assert_eq!(
        store
            .get_registered_model("nope")
            .await
            .expect_err("404")
            .code,
        ErrorCode::ResourceDoesNotExist
    );
    assert_eq!(
        store
            .create_model_version(version("nope", "s3://b/m"))
            .await
            .expect_err("no model")
            .code,
        ErrorCode::ResourceDoesNotExist
    );

    for i in 1..=3 {
        let mv = store
            .create_model_version(version("churn", &format!("s3://b/m{i}")))
            .await
            .expect("mv");
        assert_eq!(
            (mv.version, mv.current_stage.as_str(), mv.status.as_str()),
            (i, "None", "READY")
        );
    }
    store
        .set_alias("churn", "champion", 1)
        .await
        .expect("alias");
    store
        .set_alias("churn", "champion", 2)
        .await
        .expect("move alias");
    assert_eq!(
        store
            .get_version_by_alias("churn", "champion")
            .await
            .expect("by alias")
            .version,
        2
    );
    assert_eq!(
        store
            .get_version_by_alias("churn", "latest")
            .await
            .expect("latest")
            .version,
        3
    );
    let missing = store
        .get_version_by_alias("churn", "ghost")
        .await
        .expect_err("unknown alias");
    assert_eq!(missing.code, ErrorCode::InvalidParameterValue);
    assert_eq!(
        store
            .set_alias("churn", "x", 9)
            .await
            .expect_err("no version")
            .code,
        ErrorCode::ResourceDoesNotExist
    );
    let got = store.get_registered_model("churn").await.expect("get");
    assert_eq!(got.aliases, vec![("champion".to_string(), 2)]);
    assert_eq!(
        store
            .get_model_version("churn", 2)
            .await
            .expect("mv")
            .aliases,
        vec!["champion".to_string()]
    );

    store
        .transition_stage("churn", 1, Stage::Production, false)
        .await
        .expect("prod 1");
    let mv = store
        .transition_stage("churn", 2, Stage::Production, true)
        .await
        .expect("prod 2");
    assert_eq!(mv.current_stage, "Production");
    assert_eq!(
        store
            .get_model_version("churn", 1)
            .await
            .expect("v1")
            .current_stage,
        "Archived"
    );
    let latest = store
        .get_latest_versions("churn", vec![])
        .await
        .expect("latest");
    let by_stage: Vec<(String, i64)> = latest
        .iter()
        .map(|v| (v.current_stage.clone(), v.version))
        .collect();
    // MLflow lists stages in the order of the lowest version each holds.
    assert_eq!(
        by_stage,
        [
            ("Archived".to_string(), 1),
            ("Production".to_string(), 2),
            ("None".to_string(), 3)
        ]
    );
    assert!(store
        .transition_stage("churn", 3, Stage::Archived, true)
        .await
        .is_err());

    store
        .set_model_version_tag("churn", 3, Tag::new("k", "v"))
        .await
        .expect("mv tag");
    store
        .delete_model_version_tag("churn", 3, "k")
        .await
        .expect("del mv tag");
    // Deleting a missing tag is a no-op, as in MLflow.
    store
        .delete_model_version_tag("churn", 3, "k")
        .await
        .expect("no-op");
    store
        .set_registered_model_tag("churn", Tag::new("owner", "a"))
        .await
        .expect("rm tag");
    store
        .delete_registered_model_tag("churn", "owner")
        .await
        .expect("del rm tag");
    let mv = store
        .update_model_version("churn", 3, Some("better".into()))
        .await
        .expect("update mv");
    assert_eq!(mv.description, "better");
    let rm = store
        .update_registered_model("churn", Some("new desc".into()))
        .await
        .expect("update rm");
    assert_eq!(rm.description, "new desc");

    store
        .delete_model_version("churn", 2)
        .await
        .expect("delete v2");
    assert_eq!(
        store
            .get_model_version("churn", 2)
            .await
            .expect_err("gone")
            .code,
        ErrorCode::ResourceDoesNotExist
    );
    assert!(
        store
            .get_registered_model("churn")
            .await
            .expect("rm")
            .aliases
            .is_empty(),
        "alias removed"
    );
    let v4 = store
        .create_model_version(version("churn", "s3://b/m4"))
        .await
        .expect("v4");
    assert_eq!(v4.version, 4, "deleted numbers are not reused");

    let renamed = store
        .rename_registered_model("churn", "churn-v2")
        .await
        .expect("rename");
    assert_eq!(renamed.name, "churn-v2");
    assert_eq!(
        store
            .get_model_version("churn-v2", 4)
            .await
            .expect("version follows")
            .name,
        "churn-v2"
    );
    assert!(store.get_registered_model("churn").await.is_err());
    store
        .create_registered_model("other", vec![], None)
        .await
        .expect("other");
    let clash = store
        .rename_registered_model("other", "churn-v2")
        .await
        .expect_err("taken");
    assert_eq!(clash.code, ErrorCode::ResourceAlreadyExists);

    // A version made from a logged model is listed on that model's mlflow.modelVersions tag.
    let exp = experiment(&store, "reg").await;
    let lm = store
        .create_logged_model(NewLoggedModel {
            experiment_id: exp,
            name: Some("m".into()),
            ..Default::default()
        })
        .await
        .expect("logged model");
    let mut linked = version("other", &format!("models:/{}", lm.model_id));
    linked.model_id = Some(lm.model_id.clone());
    linked.storage_location = Some(lm.artifact_uri.clone());
    let mv = store
        .create_model_version(linked)
        .await
        .expect("linked version");
    assert_eq!(
        mv.storage_location.as_deref(),
        Some(lm.artifact_uri.as_str())
    );
    let tags = store
        .get_logged_model(&lm.model_id, false)
        .await
        .expect("lm")
        .tags;
    let value = tags
        .iter()
        .find(|t| t.key == "mlflow.modelVersions")
        .expect("tag")
        .value
        .clone();
    assert_eq!(value, r#"[{"name": "other", "version": 1}]"#);

    store
        .delete_registered_model("churn-v2")
        .await
        .expect("delete rm");
    assert!(store.get_model_version("churn-v2", 4).await.is_err());
    assert!(store.delete_registered_model("churn-v2").await.is_err());
}

pub async fn registry_search(store: Store) {
    for name in ["fraud-a", "fraud-b", "churn"] {
        store
            .create_registered_model(name, vec![Tag::new("team", name)], None)
            .await
            .expect("create");
    }
    store
        .create_registered_model(
            "my-prompt",
            vec![Tag::new(plumb_core::registry::IS_PROMPT_TAG, "true")],
            None,
        )
        .await
        .expect("prompt");
    let q = |domain: Domain, filter: &str, order: &[&str], max: i64| {
        let (filter, exclude_prompts) = plumb_core::registry::split_prompt_filter(
            parse_filter(domain, filter).expect("filter"),
        );
        RegistryQuery {
            filter,
            exclude_prompts,
            order_by: parse_order_by(
                domain,
                &order.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
            .expect("order"),
            max_results: max,
            offset: 0,
        }
    };
    let names = |page: plumb_core::entities::Page<plumb_core::registry::RegisteredModel>| {
        page.items.into_iter().map(|m| m.name).collect::<Vec<_>>()
    };
    let all = store
        .search_registered_models(q(Domain::RegisteredModels, "", &[], 100))
        .await
        .expect("all");
    assert_eq!(
        names(all),
        ["churn", "fraud-a", "fraud-b"],
        "prompts are left out by default"
    );
    let client_default = "tags.`mlflow.prompt.is_prompt` != 'true'";
    let page = store
        .search_registered_models(q(Domain::RegisteredModels, client_default, &[], 100))
        .await
        .expect("client");
    assert_eq!(names(page).len(), 3);
    let prompts = store
        .search_registered_models(q(
            Domain::RegisteredModels,
            "tags.`mlflow.prompt.is_prompt` = 'true'",
            &[],
            100,
        ))
        .await
        .expect("prompts");
    assert_eq!(names(prompts), ["my-prompt"]);
    let page = store
        .search_registered_models(q(
            Domain::RegisteredModels,
            "name LIKE 'fraud%'",
            &["name DESC"],
            100,
        ))
        .await
        .expect("like");
    assert_eq!(names(page), ["fraud-b", "fraud-a"]);
    let page = store
        .search_registered_models(q(Domain::RegisteredModels, "tags.team = 'churn'", &[], 100))
        .await
        .expect("tag");
    assert_eq!(names(page), ["churn"]);
    let page = store
        .search_registered_models(q(Domain::RegisteredModels, "", &[], 2))
        .await
        .expect("page");
    assert_eq!(page.items.len(), 2);
    assert!(page.next_page_token.is_some());

    for (name, run) in [("fraud-a", "r1"), ("fraud-a", "r2"), ("churn", "r1")] {
        let mut v = version(name, "s3://b/x");
        v.run_id = Some(run.into());
        store.create_model_version(v).await.expect("mv");
    }
    let mvs = |filter: &str, order: &[&str]| q(Domain::ModelVersions, filter, order, 100);
    let page = store
        .search_model_versions(mvs("name = 'fraud-a'", &["version_number DESC"]))
        .await
        .expect("mv");
    assert_eq!(
        page.items.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    let page = store
        .search_model_versions(mvs("run_id = 'r1'", &["name ASC"]))
        .await
        .expect("run");
    assert_eq!(
        page.items
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        ["churn", "fraud-a"]
    );
    let page = store
        .search_model_versions(mvs("version_number > 1", &[]))
        .await
        .expect("num");
    assert_eq!(page.items.len(), 1);
    store
        .delete_model_version("fraud-a", 2)
        .await
        .expect("delete");
    let page = store
        .search_model_versions(mvs("name = 'fraud-a'", &[]))
        .await
        .expect("after delete");
    assert_eq!(page.items.len(), 1);
}

pub async fn concurrent_version_creates_are_consecutive(store: Store) {
    store
        .create_registered_model("race", vec![], None)
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_model_version(version("race", &format!("s3://b/{i}")))
                .await
                .expect("mv")
                .version
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.expect("task"));
    }
    got.sort_unstable();
    assert_eq!(got, (1..=64).collect::<Vec<_>>());
}

/// `plumb gc`: deleted runs and experiments are found by age and removed with everything that
/// belongs to them; anything not deleted is refused and nothing changes.
pub async fn garbage_collection(store: Store) {
    let keep_exp = experiment(&store, "gc-keep").await;
    let gone_exp = experiment(&store, "gc-gone").await;
    let r1 = run(&store, &keep_exp, "deleted-run").await;
    let r2 = run(&store, &keep_exp, "kept-run").await;
    let r3 = run(&store, &gone_exp, "run-of-deleted-experiment").await;
    for r in [&r1, &r2, &r3] {
        log(
            &store,
            r,
            vec![metric("loss", 1.0, 1, 0), metric("loss", 0.5, 2, 1)],
            vec![Param::new("lr", "0.1")],
            vec![Tag::new("t", "v")],
        )
        .await;
    }
    store
        .create_logged_model(NewLoggedModel {
            experiment_id: gone_exp.clone(),
            name: Some("m".into()),
            ..Default::default()
        })
        .await
        .expect("logged model");
    store.delete_run(&r1).await.expect("delete run");
    store
        .delete_experiment(&gone_exp)
        .await
        .expect("delete experiment");

    let found = store.deleted(None).await.expect("deleted");
    let runs: Vec<&str> = found.runs.iter().map(|r| r.run_id.as_str()).collect();
    assert!(
        runs.contains(&r1.as_str()) && runs.contains(&r3.as_str()),
        "{found:?}"
    );
    assert!(!runs.contains(&r2.as_str()));
    assert_eq!(
        found
            .experiments
            .iter()
            .map(|e| e.experiment_id.as_str())
            .collect::<Vec<_>>(),
        vec![gone_exp.as_str()]
    );
    assert!(found
        .runs
        .iter()
        .all(|r| r.artifact_uri.contains(r.run_id.as_str())));
    assert_eq!(
        store.deleted(Some(0)).await.expect("deleted"),
        crate::Deleted::default(),
        "nothing was deleted before 1970"
    );

    // Refused: an active run, an active experiment, an unknown run. Nothing changes.
    let refused = store.purge(vec![r1.clone(), r2.clone()], vec![]).await;
    assert_eq!(
        refused.expect_err("active run").code,
        ErrorCode::InvalidParameterValue
    );
    let refused = store.purge(vec![], vec![keep_exp.clone()]).await;
    assert_eq!(
        refused.expect_err("active experiment").code,
        ErrorCode::InvalidParameterValue
    );
    let refused = store.purge(vec!["no-such-run".into()], vec![]).await;
    assert_eq!(
        refused.expect_err("unknown").code,
        ErrorCode::ResourceDoesNotExist
    );
    assert!(store.get_run(&r1).await.is_ok());

    store
        .purge(vec![r1.clone()], vec![gone_exp.clone()])
        .await
        .expect("purge");
    for r in [&r1, &r3] {
        assert_eq!(
            store.get_run(r).await.expect_err("purged").code,
            ErrorCode::ResourceDoesNotExist
        );
        let history = store
            .metric_history(r, "loss", 0, None)
            .await
            .expect("history");
        assert!(history.items.is_empty());
    }
    assert_eq!(
        store
            .get_experiment(&gone_exp)
            .await
            .expect_err("purged")
            .code,
        ErrorCode::ResourceDoesNotExist
    );
    let kept = store.get_run(&r2).await.expect("kept run");
    assert_eq!(kept.data.metrics.len(), 1);
    assert_eq!(kept.data.params.len(), 1);
    let history = store
        .metric_history(&r2, "loss", 0, None)
        .await
        .expect("history");
    assert_eq!(history.items.len(), 2);
    assert_eq!(
        store.deleted(None).await.expect("deleted"),
        crate::Deleted::default()
    );
    // The name of a purged experiment is free again.
    experiment(&store, "gc-gone").await;
}

/// `plumb import`: entities keep their ids, names, times and stages; running it again changes
/// nothing; points are added once; new experiments get fresh ids after imported ones.
pub async fn import_keeps_ids_and_history(store: Store) {
    use plumb_core::entities::{
        Experiment, LoggedModel, Run, RunData, RunInfo, RunInputs, RunMetric,
    };
    use plumb_core::registry::{ModelVersion, RegisteredModel};

    let exp = Experiment {
        experiment_id: "42".into(),
        name: "imported".into(),
        artifact_location: "mlflow-artifacts:/42".into(),
        lifecycle_stage: LifecycleStage::Active,
        creation_time: 1_600_000_000_000,
        last_update_time: 1_600_000_000_500,
        tags: vec![Tag::new("team", "ml")],
    };
    assert!(store.import_experiment(exp.clone()).await.expect("import"));
    assert!(!store.import_experiment(exp.clone()).await.expect("again"));
    assert_eq!(store.get_experiment("42").await.expect("get"), exp);
    let fresh = experiment(&store, "made-after").await;
    assert!(fresh.parse::<i64>().expect("id") > 42, "{fresh}");

    let run_id = "0123456789abcdef0123456789abcdef".to_string();
    let run = Run {
        info: RunInfo {
            run_id: run_id.clone(),
            experiment_id: "42".into(),
            run_name: "old-run".into(),
            user_id: "alice".into(),
            status: RunStatus::Finished,
            start_time: Some(1_600_000_001_000),
            end_time: Some(1_600_000_002_000),
            artifact_uri: format!("mlflow-artifacts:/42/{run_id}/artifacts"),
            lifecycle_stage: LifecycleStage::Active,
        },
        data: RunData {
            metrics: vec![],
            params: vec![Param::new("lr", "0.1"), Param::new("depth", "3")],
            tags: vec![Tag::new("mlflow.runName", "old-run"), Tag::new("note", "x")],
        },
        inputs: RunInputs {
            dataset_inputs: vec![DatasetInput {
                tags: vec![Tag::new("mlflow.data.context", "training")],
                dataset: Dataset {
                    name: "churn-2024".into(),
                    digest: "d1g3st".into(),
                    source_type: "local".into(),
                    source: "{\"uri\": \"/data/churn.csv\"}".into(),
                    schema: Some("{}".into()),
                    profile: None,
                },
            }],
            model_inputs: vec!["m-00000000000000000000000000000001".into()],
        },
        outputs: vec![ModelOutput {
            model_id: "m-0123456789abcdef0123456789abcdef".into(),
            step: 7,
        }],
    };
    assert!(store.import_run(run.clone()).await.expect("import run"));
    assert!(!store.import_run(run.clone()).await.expect("again"));
    // Inputs of a deleted run come along too (the ordinary write wants an active run).
    let mut gone = run.clone();
    gone.info.run_id = "fedcba9876543210fedcba9876543210".into();
    gone.info.lifecycle_stage = LifecycleStage::Deleted;
    assert!(store
        .import_run(gone.clone())
        .await
        .expect("import deleted run"));
    let got = store.get_run(&gone.info.run_id).await.expect("get deleted");
    assert_eq!(got.inputs, gone.inputs);
    assert_eq!(got.outputs, gone.outputs);
    let points: Vec<Metric> = (0..500)
        .map(|i| metric("loss", 1.0 / (i + 1) as f64, 10 + i, i))
        .collect();
    store
        .import_points(&run_id, points[..300].to_vec())
        .await
        .expect("points");
    // Resumed after an interruption: the overlap is stored once.
    store
        .import_points(&run_id, points[200..].to_vec())
        .await
        .expect("rest");
    let got = store.get_run(&run_id).await.expect("get run");
    assert_eq!(got.info, run.info);
    assert_eq!(got.data.params, run.data.params);
    assert_eq!(got.data.tags, run.data.tags);
    assert_eq!(got.inputs, run.inputs);
    assert_eq!(got.outputs, run.outputs);

    let model = LoggedModel {
        model_id: "m-0123456789abcdef0123456789abcdef".into(),
        experiment_id: "42".into(),
        name: "churn-model".into(),
        artifact_uri: "mlflow-artifacts:/42/models/m-0123456789abcdef0123456789abcdef/artifacts"
            .into(),
        creation_timestamp_ms: 1_600_000_001_500,
        last_updated_timestamp_ms: 1_600_000_001_900,
        status: LoggedModelStatus::Ready,
        status_message: Some("done".into()),
        model_type: Some("sklearn".into()),
        source_run_id: Some(run_id.clone()),
        lifecycle_stage: LifecycleStage::Active,
        tags: vec![Tag::new("mlflow.user", "alice")],
        params: vec![Param::new("alpha", "0.5")],
        metrics: vec![RunMetric {
            run_id: run_id.clone(),
            metric: Metric {
                dataset_name: Some("churn-2024".into()),
                dataset_digest: Some("d1g3st".into()),
                model_id: Some("m-0123456789abcdef0123456789abcdef".into()),
                ..metric("auc", 0.875, 1_600_000_001_800, 7)
            },
        }],
    };
    assert!(store
        .import_logged_model(model.clone())
        .await
        .expect("import model"));
    assert!(!store
        .import_logged_model(model.clone())
        .await
        .expect("again"));
    assert_eq!(
        store
            .get_logged_model(&model.model_id, false)
            .await
            .expect("get model"),
        model
    );
    let mut orphan = model.clone();
    orphan.model_id = "m-ffffffffffffffffffffffffffffffff".into();
    orphan.experiment_id = "4242".into();
    let err = store
        .import_logged_model(orphan)
        .await
        .expect_err("no such experiment");
    assert_eq!(err.code, ErrorCode::ResourceDoesNotExist);
    assert_eq!(got.data.metrics, vec![points[499].clone()]);
    let history = store
        .metric_history(&run_id, "loss", 0, None)
        .await
        .expect("history");
    assert_eq!(history.items, points);

    let rm = RegisteredModel {
        name: "churn".into(),
        creation_timestamp: 1_600_000_003_000,
        last_updated_timestamp: 1_600_000_004_000,
        description: "the churn model".into(),
        tags: vec![Tag::new("owner", "alice")],
        aliases: vec![],
        latest_versions: vec![],
    };
    assert!(store.import_registered_model(rm.clone()).await.expect("rm"));
    assert!(!store
        .import_registered_model(rm.clone())
        .await
        .expect("again"));
    for (version, stage) in [(1, "Archived"), (3, "Production")] {
        let mv = ModelVersion {
            name: "churn".into(),
            version,
            creation_timestamp: 1_600_000_005_000 + version,
            last_updated_timestamp: 1_600_000_006_000 + version,
            user_id: None,
            current_stage: stage.into(),
            description: format!("v{version}"),
            source: format!("mlflow-artifacts:/42/{run_id}/artifacts/model"),
            run_id: run_id.clone(),
            status: "READY".into(),
            status_message: None,
            run_link: String::new(),
            tags: vec![Tag::new("validated", "yes")],
            aliases: vec![],
            storage_location: None,
            model_id: None,
        };
        assert!(store.import_model_version(mv.clone()).await.expect("mv"));
        assert!(!store.import_model_version(mv.clone()).await.expect("again"));
        assert_eq!(
            store
                .get_model_version("churn", version)
                .await
                .expect("get"),
            mv
        );
    }
    store
        .set_alias("churn", "champion", 3)
        .await
        .expect("alias");
    let got = store.get_registered_model("churn").await.expect("rm");
    assert_eq!(got.description, rm.description);
    assert_eq!(got.creation_timestamp, rm.creation_timestamp);
    assert_eq!(got.tags, rm.tags);
    // The next version continues after the imported numbers.
    let next = store
        .create_model_version(NewModelVersion {
            name: "churn".into(),
            source: format!("mlflow-artifacts:/42/{run_id}/artifacts/model"),
            run_id: Some(run_id.clone()),
            ..Default::default()
        })
        .await
        .expect("next version");
    assert_eq!(next.version, 4);
}
