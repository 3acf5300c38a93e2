//! HTTP pull sources land in raw/ like uploads and run through ingest; an unchanged source
//! is not ingested twice.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use contracts::{Contract, PullSource};
use ingest::definitions::publish_contract;
use mlpipe::stack::LocalStack;
use stage::StageError as _;
use storage::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `body` for every request on 127.0.0.1 (a bounded number of requests).
async fn serve(body: &'static str, requests: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..requests {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/csv\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    format!("http://{addr}/export/people.csv?token=abc")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_csv_is_ingested_once() {
    let text =
        "dataset = \"people\"\n[[columns]]\nname = \"id\"\ntype = \"integer\"\nnullable = false\n";
    let store = Store::memory();
    publish_contract(&store, &Contract::from_toml(text, "p.toml").unwrap(), text)
        .await
        .unwrap();
    let url = serve("id\n1\n2\n3\n", 2).await;
    let source = PullSource {
        url,
        extension: None,
        schedule: None,
    };
    let client = reqwest::Client::new();
    let stack = LocalStack::new(&store);

    let first = ingest::pull::pull(&client, stack.store(), "people", &source)
        .await
        .unwrap();
    assert!(
        first.new && first.key.starts_with("raw/people/pull-") && first.key.ends_with(".csv"),
        "{first:?}"
    );
    let deliveries: Vec<_> = stack
        .run_until_quiet(|_| {})
        .await
        .into_iter()
        .filter(|d| d.stage == events::Stage::Ingest)
        .collect();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].result["outcome"], "committed");
    assert_eq!(deliveries[0].result["rows"]["valid"], 3);

    let second = ingest::pull::pull(&client, stack.store(), "people", &source)
        .await
        .unwrap();
    assert!(!second.new);
    assert_eq!(second.key, first.key);
    assert!(
        stack.run_until_quiet(|_| {}).await.is_empty(),
        "unchanged content raises no event"
    );
}

#[tokio::test]
async fn unreachable_source_is_a_retryable_error() {
    let source = PullSource {
        url: "http://127.0.0.1:9/nothing.csv".into(),
        extension: None,
        schedule: None,
    };
    let err = ingest::pull::pull(&reqwest::Client::new(), &Store::memory(), "people", &source)
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
}
