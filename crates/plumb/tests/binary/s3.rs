//! `--artifacts-destination s3://bucket/prefix` against a real S3-protocol server in its own
//! process (moto's server mode, installed by scripts/test.sh; its path in
//! `PLUMB_TEST_MOTO_SERVER`): multi-MiB artifacts stream through plumb's proxy both ways and land
//! in the bucket under the prefix.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, futures_stream, Plumb};

struct S3Server {
    child: Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_s3() -> S3Server {
    let exe = std::env::var("PLUMB_TEST_MOTO_SERVER").expect(
        "PLUMB_TEST_MOTO_SERVER must name moto_server (scripts/test.sh installs it into .venvs/s3)",
    );
    let port = free_port();
    let child = Command::new(exe)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(&server.endpoint).await.is_err() {
        assert!(Instant::now() < deadline, "the S3 server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_stream_through_to_an_s3_bucket() {
    const CHUNK: usize = 1024 * 1024;
    const CHUNKS: usize = 24; // 24 MiB: a multipart upload of several parts
    let s3 = start_s3().await;
    let client = reqwest::Client::new();
    let made = client
        .put(format!("{}/plumb-bucket", s3.endpoint))
        .send()
        .await
        .expect("create bucket");
    assert!(made.status().is_success(), "{}", made.status());

    let dir = tempfile::tempdir().expect("tempdir");
    let plumb = Plumb::start_env(
        dir.path(),
        &[
            "--artifacts-destination",
            "s3://plumb-bucket/team/artifacts",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("MLFLOW_S3_ENDPOINT_URL", &s3.endpoint),
        ],
    )
    .await;
    let url = format!(
        "{}/api/2.0/mlflow-artifacts/artifacts/1/run/artifacts/model/big.bin",
        plumb.base
    );
    let resp = client
        .put(&url)
        .body(reqwest::Body::wrap_stream(futures_stream(CHUNK, CHUNKS)))
        .send()
        .await
        .expect("upload");
    assert!(resp.status().is_success(), "{}", resp.status());

    // In the bucket, under the prefix, whole.
    let head = client
        .head(format!(
            "{}/plumb-bucket/team/artifacts/1/run/artifacts/model/big.bin",
            s3.endpoint
        ))
        .send()
        .await
        .expect("head");
    assert!(
        head.status().is_success(),
        "object not in the bucket: {}",
        head.status()
    );
    assert_eq!(
        head.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok()),
        Some(CHUNK * CHUNKS)
    );

    // Back through the proxy, byte for byte.
    let mut resp = client.get(&url).send().await.expect("download");
    assert!(resp.status().is_success(), "{}", resp.status());
    let (mut total, mut expected) = (0usize, 0u8);
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        for b in chunk.iter() {
            assert_eq!(*b, expected, "byte {total}");
            expected = expected.wrapping_add(1);
            total += 1;
        }
    }
    assert_eq!(total, CHUNK * CHUNKS);

    // Listed with its size, then deleted.
    let list_url = reqwest::Url::parse_with_params(
        &format!("{}/api/2.0/mlflow-artifacts/artifacts", plumb.base),
        &[("path", "1/run/artifacts/model")],
    )
    .expect("url");
    let listed: serde_json::Value = client
        .get(list_url.clone())
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["files"][0]["path"], "big.bin");
    assert_eq!(
        listed["files"][0]["file_size"].as_u64(),
        Some((CHUNK * CHUNKS) as u64)
    );
    let deleted = client.delete(&url).send().await.expect("delete");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let listed: serde_json::Value = client
        .get(list_url)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(
        listed
            .get("files")
            .is_none_or(|f| f.as_array().is_some_and(Vec::is_empty)),
        "{listed}"
    );
    let missing = client.get(&url).send().await.expect("get");
    assert_eq!(missing.status().as_u16(), 404);
}
