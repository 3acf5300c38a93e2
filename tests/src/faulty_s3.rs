//! A faulty S3: a proxy in front of an S3 protocol server that, at a set rate, answers as a
//! struggling S3 does: `503 SlowDown`, `500 InternalError`, a connection reset before the
//! request is served, added latency, and a reply lost after the server applied the request
//! (so a retried create-if-absent meets its own write as a failed precondition).
//! Deterministic for a seed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What the proxy did, by kind.
#[derive(Debug, Default)]
pub struct FaultCounts {
    pub requests: AtomicU64,
    pub slow_down: AtomicU64,
    pub internal_error: AtomicU64,
    pub reset: AtomicU64,
    pub delayed: AtomicU64,
    pub lost_response: AtomicU64,
}

impl FaultCounts {
    /// Every fault injected (delays included).
    pub fn injected(&self) -> u64 {
        [
            &self.slow_down,
            &self.internal_error,
            &self.reset,
            &self.delayed,
            &self.lost_response,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

impl std::fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        write!(
            f,
            "{} requests: {} SlowDown, {} InternalError, {} resets, {} delayed, {} lost responses",
            n(&self.requests),
            n(&self.slow_down),
            n(&self.internal_error),
            n(&self.reset),
            n(&self.delayed),
            n(&self.lost_response)
        )
    }
}

struct State {
    lose_next_put: std::sync::atomic::AtomicBool,
    upstream: String,
    rate: f64,
    rng: std::sync::Mutex<u64>,
    client: reqwest::Client,
    counts: Arc<FaultCounts>,
}

impl State {
    /// A number in [0, 1) from a SplitMix64 sequence.
    fn next(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    SlowDown,
    InternalError,
    Reset,
    Delay,
    LostResponse,
}

/// The proxy; stops when dropped.
pub struct FaultyS3 {
    pub endpoint: String,
    pub counts: Arc<FaultCounts>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultyS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultyS3 {
    /// Listens on a free loopback port, forwarding to `upstream` (`http://host:port`), with a
    /// fault on `rate` of the requests (0.0..=1.0), chosen by `seed`.
    pub async fn start(upstream: &str, rate: f64, seed: u64) -> FaultyS3 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let counts = Arc::new(FaultCounts::default());
        let state = Arc::new(State {
            lose_next_put: std::sync::atomic::AtomicBool::new(false),
            upstream: upstream.trim_end_matches('/').to_string(),
            rate,
            rng: std::sync::Mutex::new(seed),
            client: reqwest::Client::new(),
            counts: counts.clone(),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { serve(req, &state).await }
                    });
                    // A reset ends the connection with an error: nothing to report.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultyS3 {
            endpoint,
            counts,
            state: shared,
            task,
        }
    }

    /// The next PUT is applied by the server and its reply lost, whatever the rate.
    pub fn lose_reply_to_next_put(&self) {
        self.state.lose_next_put.store(true, Ordering::SeqCst);
    }
}

fn s3_error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>faulty-s3</RequestId></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// An error for hyper: the connection is closed without a reply.
#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for Reset {}

async fn serve(req: Request<Incoming>, state: &State) -> Result<Response<Full<Bytes>>, Reset> {
    let counts = &state.counts;
    counts.requests.fetch_add(1, Ordering::Relaxed);
    let fault = if state.next() < state.rate {
        Some(match (state.next() * 5.0) as u32 {
            0 => Fault::SlowDown,
            1 => Fault::InternalError,
            2 => Fault::Reset,
            3 => Fault::Delay,
            _ => Fault::LostResponse,
        })
    } else {
        None
    };
    let (parts, body) = req.into_parts();
    let fault = if parts.method == hyper::Method::PUT
        && state.lose_next_put.swap(false, Ordering::SeqCst)
    {
        Some(Fault::LostResponse)
    } else {
        fault
    };
    let body = body.collect().await.map_err(|_| Reset)?.to_bytes();
    match fault {
        Some(Fault::SlowDown) => {
            counts.slow_down.fetch_add(1, Ordering::Relaxed);
            return Ok(s3_error(
                503,
                "SlowDown",
                "Please reduce your request rate.",
            ));
        }
        Some(Fault::InternalError) => {
            counts.internal_error.fetch_add(1, Ordering::Relaxed);
            return Ok(s3_error(
                500,
                "InternalError",
                "We encountered an internal error. Please try again.",
            ));
        }
        Some(Fault::Reset) => {
            counts.reset.fetch_add(1, Ordering::Relaxed);
            return Err(Reset);
        }
        Some(Fault::Delay) => {
            counts.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        Some(Fault::LostResponse) | None => {}
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forward = state
        .client
        .request(parts.method.clone(), format!("{}{path}", state.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
            forward = forward.header(name, value);
        }
    }
    let reply = forward.send().await.map_err(|_| Reset)?;
    if fault == Some(Fault::LostResponse) {
        // The server applied the request; the client never hears of it.
        counts.lost_response.fetch_add(1, Ordering::Relaxed);
        return Err(Reset);
    }
    let mut response = Response::builder().status(reply.status().as_u16());
    for (name, value) in reply.headers() {
        // The length is kept (a HEAD reply's names the object's size); the body is whole.
        if name != reqwest::header::TRANSFER_ENCODING {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = reply.bytes().await.map_err(|_| Reset)?;
    Ok(response.body(Full::new(bytes)).unwrap_or_default())
}
