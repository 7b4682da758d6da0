//! The artifact proxy: streamed round trips, listings, and every path-escape shape refused with
//! 400 on both `/api` and `/ajax-api`.

use serde_json::{json, Value};

use crate::support::TestServer;

#[tokio::test]
async fn upload_download_list_delete_round_trip() {
    let s = TestServer::spawn().await;
    let big: Vec<u8> = (0..(5 * 1024 * 1024 + 17))
        .map(|i| (i % 251) as u8)
        .collect();
    let put = s
        .client
        .put(s.url("/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/model/data.bin"))
        .header("content-type", "application/octet-stream")
        .body(big.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(put.status().as_u16(), 200);
    let put = s
        .client
        .put(s.url("/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/notes.txt"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status().as_u16(), 200);

    let got = s
        .client
        .get(s.url("/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/model/data.bin"))
        .send()
        .await
        .expect("get");
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(
        got.headers()["content-disposition"],
        "attachment; filename=data.bin"
    );
    assert_eq!(got.bytes().await.expect("bytes").as_ref(), big.as_slice());

    let (_, listed) = s
        .get("/api/2.0/mlflow-artifacts/artifacts?path=1/run/artifacts")
        .await;
    assert_eq!(
        listed,
        json!({"files": [
            {"path": "model", "is_dir": true},
            {"path": "notes.txt", "is_dir": false, "file_size": 5},
        ]})
    );
    let (_, missing) = s
        .get("/api/2.0/mlflow-artifacts/artifacts?path=1/nothing")
        .await;
    assert_eq!(missing, json!({}));
    let (status, body) = s
        .get("/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/absent.txt")
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");

    // A file where a directory is needed is the client's conflict: 400, not a 5xx.
    let nested = s.url("/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/notes.txt/inner");
    let (status, body) = s.send(s.client.put(nested).body("x")).await;
    assert_eq!(status, 400, "{body}");

    let (status, _) = s
        .send(
            s.client
                .delete(s.url("/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/model")),
        )
        .await;
    assert_eq!(status, 200);
    let (_, listed) = s
        .get("/api/2.0/mlflow-artifacts/artifacts?path=1/run/artifacts")
        .await;
    assert_eq!(
        listed,
        json!({"files": [{"path": "notes.txt", "is_dir": false, "file_size": 5}]})
    );
}

#[tokio::test]
async fn run_artifact_listing_uses_paths_relative_to_the_run() {
    let s = TestServer::spawn().await;
    let run_id = s.new_run().await;
    let key = format!("0/{run_id}/artifacts/sub/dir/f.txt");
    let put = s
        .client
        .put(s.url(&format!("/api/2.0/mlflow-artifacts/artifacts/{key}")))
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status().as_u16(), 200);
    let (_, listed) = s
        .get(&format!(
            "/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=sub"
        ))
        .await;
    assert_eq!(
        listed["files"],
        json!([{"path": "sub/dir", "is_dir": true}])
    );
    assert_eq!(
        listed["root_uri"],
        format!("mlflow-artifacts:/0/{run_id}/artifacts")
    );
    let got = s
        .client
        .get(s.url(&format!("/get-artifact?run_id={run_id}&path=sub/dir/f.txt")))
        .send()
        .await
        .expect("get");
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.text().await.expect("text"), "x");
    let (status, _) = s
        .get(&format!(
            "/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=../x"
        ))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn hostile_paths_are_refused_on_both_prefixes_and_change_nothing() {
    let s = TestServer::spawn().await;
    let outside = s.dir.path().join("outside.txt");
    std::fs::write(&outside, "secret").expect("write");
    // A symlink inside the root pointing out of it.
    let root = s.dir.path().join("artifacts");
    std::os::unix::fs::symlink(s.dir.path(), root.join("link")).expect("symlink");
    // Raw, on-the-wire spellings (reqwest does not normalise percent escapes).
    let hostile = [
        "..%2Foutside.txt",
        "a/..%2F..%2Foutside.txt",
        "%2e%2e/outside.txt",
        "%252e%252e/outside.txt",
        "%2Fetc%2Fpasswd",
        "a%5C..%5C..%5Coutside.txt",
        "C:%5Cwindows",
        "a%00b",
        "a%0Ab",
        "a//b",
        "link/outside.txt",
    ];
    for prefix in ["/api/2.0", "/ajax-api/2.0"] {
        for p in hostile {
            let url = format!("{prefix}/mlflow-artifacts/artifacts/{p}");
            let (g, gb) = s.raw("GET", &url, b"").await;
            let (u, ub) = s.raw("PUT", &url, b"pwned").await;
            let (d, db) = s.raw("DELETE", &url, b"").await;
            for (what, status, body) in [("GET", g, gb), ("PUT", u, ub), ("DELETE", d, db)] {
                assert_eq!(status, 400, "{what} {prefix} {p}: {body}");
                assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{what} {p}");
            }
            let list = format!("{prefix}/mlflow-artifacts/artifacts?path={p}");
            let (status, body) = s.raw("GET", &list, b"").await;
            assert_eq!(status, 400, "list {prefix} {p}: {body}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(&outside).expect("still there"),
        "secret"
    );
    let (status, _) = s
        .send(
            s.client
                .post(s.url("/api/2.0/mlflow-artifacts/mpu/create/1/x"))
                .json(&json!({"path": "1/x"})),
        )
        .await;
    assert_eq!(status, 501);
}

#[tokio::test]
async fn logged_model_files_are_listed_and_served() {
    let s = TestServer::spawn().await;
    let model = s
        .ok(
            "/api/2.0/mlflow/logged-models",
            json!({"experiment_id": "0", "name": "m"}),
        )
        .await;
    let id = model["model"]["info"]["model_id"]
        .as_str()
        .expect("id")
        .to_string();
    let root = model["model"]["info"]["artifact_uri"]
        .as_str()
        .expect("uri")
        .strip_prefix("mlflow-artifacts:/")
        .expect("a proxied model root")
        .to_string();
    let put = s
        .client
        .put(s.url(&format!(
            "/api/2.0/mlflow-artifacts/artifacts/{root}/sub/MLmodel"
        )))
        .body("flavors: {}\n")
        .send()
        .await
        .expect("put");
    assert_eq!(put.status().as_u16(), 200);

    let (_, listed) = s
        .get(&format!(
            "/api/2.0/mlflow/logged-models/{id}/artifacts/directories?artifact_directory_path=sub"
        ))
        .await;
    assert_eq!(
        listed["files"],
        json!([{"path": "sub/MLmodel", "is_dir": false, "file_size": 12}])
    );
    let got = s
        .client
        .get(s.url(&format!(
            "/ajax-api/2.0/mlflow/logged-models/{id}/artifacts/files?artifact_file_path=sub/MLmodel"
        )))
        .send()
        .await
        .expect("get");
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.text().await.expect("text"), "flavors: {}\n");

    for (query, status, code) in [
        ("", 400, "BAD_REQUEST"),
        (
            "?artifact_file_path=../../etc/passwd",
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("?artifact_file_path=absent", 404, "RESOURCE_DOES_NOT_EXIST"),
    ] {
        let (got, body) = s
            .get(&format!(
                "/ajax-api/2.0/mlflow/logged-models/{id}/artifacts/files{query}"
            ))
            .await;
        assert_eq!(
            (got, body["error_code"].as_str()),
            (status, Some(code)),
            "{query}: {body}"
        );
    }
    let (got, body) = s
        .get("/ajax-api/2.0/mlflow/logged-models/m-nope/artifacts/files?artifact_file_path=x")
        .await;
    assert_eq!(
        (got, body["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
}

/// The UI's upload: the file lands in the run's artifacts; sizes and paths are checked.
#[tokio::test]
async fn ui_upload_writes_into_the_run_and_refuses_hostile_input() {
    let s = TestServer::spawn().await;
    let run = s.new_run().await;
    let with = |route: &str, path: &str| {
        reqwest::Url::parse_with_params(&s.url(route), [("run_uuid", run.as_str()), ("path", path)])
            .expect("url")
    };
    let upload = |path: &str, body: Vec<u8>| {
        s.client
            .post(with("/ajax-api/2.0/mlflow/upload-artifact", path))
            .body(body)
    };
    let (status, body) = s.send(upload("plots/roc.png", b"\x89PNG".to_vec())).await;
    assert_eq!((status, body), (200, Value::Null));
    let got = s
        .client
        .get(with("/get-artifact", "plots/roc.png"))
        .send()
        .await
        .expect("get");
    assert_eq!(got.bytes().await.expect("bytes").as_ref(), b"\x89PNG");
    for path in ["..%2Fx", "a/../../x", "/abs", "C:\\x", "a\u{0}b"] {
        let (status, body) = s.send(upload(path, b"x".to_vec())).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (400, Some("Invalid path")),
            "{path}"
        );
    }
    let (status, body) = s
        .send(upload("big.bin", vec![0; 10 * 1024 * 1024 + 1]))
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("Artifact size is too large. Max size is 10MB."))
    );
    let listed = s
        .get(&format!("/api/2.0/mlflow/artifacts/list?run_id={run}"))
        .await
        .1;
    assert_eq!(
        listed["files"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}
