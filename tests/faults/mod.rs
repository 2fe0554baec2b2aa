//! Faults an audit survives, observed from outside the code under test (issue 12): a
//! worker killed or stopped while an LLM call is in flight, a vendor that rate limits,
//! breaks its JSON, cuts its body or refuses, and the step-parallelism window.
//!
//! The observation point is [`LlmProxy`], an HTTP proxy the worker's `OPENAI_BASE_URL`
//! points at, in front of the simulator's OpenAI endpoint: it sees every chat completion
//! the worker sends (which step it is for, when it started, whether it was answered), can
//! hold chosen requests unanswered until the test releases them (so "an activity is in
//! flight at the kill" is a fact, not a race won by latency), and can answer chosen
//! requests with a fault instead of the simulator's answer.

mod secrets;
mod vendors;
mod workers;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The sample configuration's step names by position (sim/data/sample-audit-config.json):
/// each step's prompt names its step, which is how the proxy tells the requests apart.
pub(crate) const SAMPLE_STEPS: [(i64, &str); 6] = [
    (1, "Présentation et cadre de l'appel"),
    (2, "Consentement et enregistrement de l'appel"),
    (3, "Découverte des besoins"),
    (4, "Présentation de l'offre et du prix"),
    (5, "Droit de rétractation et conditions"),
    (6, "Conclusion et confirmation des coordonnées"),
];

/// What the proxy answers instead of the simulator's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// 429 with `Retry-After` (seconds), as OpenAI's rate limiter answers.
    RateLimited(u64),
    /// 500 with an OpenAI-shaped error body.
    ServerError,
    /// 200 whose message content is the simulator's JSON answer cut in half.
    MalformedContent,
    /// 200 whose body is the first half of the simulator's response bytes.
    TruncatedBody,
    /// 200 whose answer stopped on the token limit (`finish_reason: "length"`).
    LengthCut,
    /// 200 where the model refused (`message.refusal` set, content null).
    Refusal,
}

/// One chat completion request the proxy received.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// 1-based order of arrival.
    pub ordinal: u64,
    /// The step of the sample configuration its prompt is for (0 when none matched).
    pub step: i64,
    /// When it arrived.
    pub at: Instant,
    /// The fault it was answered with, if any.
    pub fault: Option<Fault>,
    /// Whether the proxy produced an answer (false while held).
    pub answered: bool,
}

#[derive(Default)]
struct Counters {
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    faults: Mutex<BTreeMap<u64, Fault>>,
    held: Mutex<BTreeSet<u64>>,
    release: tokio::sync::watch::Sender<bool>,
    seen: Mutex<Vec<Seen>>,
    counters: Counters,
}

/// A recording, fault-injecting proxy in front of the simulator's `/openai/v1`.
pub(crate) struct LlmProxy {
    /// What the worker's `OPENAI_BASE_URL` is set to.
    pub base: String,
    state: Arc<ProxyState>,
}

impl LlmProxy {
    /// A proxy forwarding to the simulator at `sim`.
    pub(crate) async fn start(sim: std::net::SocketAddr) -> LlmProxy {
        use poem::listener::{Acceptor, Listener};
        let state = Arc::new(ProxyState {
            upstream: format!("http://{sim}/openai/v1"),
            http: reqwest::Client::new(),
            faults: Default::default(),
            held: Default::default(),
            release: tokio::sync::watch::channel(false).0,
            seen: Default::default(),
            counters: Default::default(),
        });
        let shared = state.clone();
        let app = poem::Route::new().at(
            "/openai/v1/chat/completions",
            poem::post(poem::endpoint::make(move |req: poem::Request| {
                let state = shared.clone();
                async move { chat(state, req).await }
            })),
        );
        let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind");
        let addr = *acceptor.local_addr()[0].as_socket_addr().expect("addr");
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        LlmProxy {
            base: format!("http://{addr}/openai/v1"),
            state,
        }
    }

    /// Answers the `ordinal`-th request (1-based) with `fault`.
    pub(crate) fn fault(&self, ordinal: u64, fault: Fault) {
        self.state.faults.lock().unwrap().insert(ordinal, fault);
    }

    /// Holds the requests of these ordinals unanswered until [`LlmProxy::release`].
    pub(crate) fn hold(&self, ordinals: impl IntoIterator<Item = u64>) {
        self.state.held.lock().unwrap().extend(ordinals);
    }

    /// Lets every held request go on to the simulator.
    pub(crate) fn release(&self) {
        self.state.release.send_replace(true);
    }

    /// Every request received so far, in order of arrival.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Requests received and not answered yet.
    pub(crate) fn in_flight(&self) -> u64 {
        self.state.counters.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at once.
    pub(crate) fn max_in_flight(&self) -> u64 {
        self.state.counters.max_in_flight.load(Ordering::SeqCst)
    }
}

/// Decrements the in-flight count when the request's handling ends, however it ends.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn step_of(body: &serde_json::Value) -> i64 {
    let text: String = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .collect();
    SAMPLE_STEPS
        .iter()
        .find(|(_, name)| text.contains(name))
        .map_or(0, |(p, _)| *p)
}

fn json_response(status: u16, body: &serde_json::Value) -> poem::Response {
    poem::Response::builder()
        .status(poem::http::StatusCode::from_u16(status).expect("status"))
        .content_type("application/json")
        .body(body.to_string())
}

async fn chat(state: Arc<ProxyState>, mut req: poem::Request) -> poem::Response {
    let bytes = req.take_body().into_bytes().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let c = &state.counters;
    let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    c.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _in_flight = InFlight(&c.in_flight);
    let (ordinal, fault) = {
        let mut seen = state.seen.lock().unwrap();
        let ordinal = seen.len() as u64 + 1;
        let fault = state.faults.lock().unwrap().get(&ordinal).copied();
        seen.push(Seen {
            ordinal,
            step: step_of(&body),
            at: Instant::now(),
            fault,
            answered: false,
        });
        (ordinal, fault)
    };
    if state.held.lock().unwrap().contains(&ordinal) {
        let mut released = state.release.subscribe();
        let _ = released.wait_for(|r| *r).await;
    }
    let answer = answer(&state, &bytes, fault).await;
    state.seen.lock().unwrap()[ordinal as usize - 1].answered = true;
    answer
}

async fn answer(state: &ProxyState, bytes: &[u8], fault: Option<Fault>) -> poem::Response {
    let error = |kind: &str, message: &str| serde_json::json!({"error": {"message": message, "type": kind, "code": kind}});
    match fault {
        Some(Fault::RateLimited(after)) => {
            let mut r = json_response(
                429,
                &error("rate_limit_exceeded", "Rate limit reached for requests"),
            );
            r.headers_mut()
                .insert("retry-after", after.to_string().parse().expect("header"));
            return r;
        }
        Some(Fault::ServerError) => {
            return json_response(500, &error("server_error", "The server had an error"));
        }
        _ => {}
    }
    let upstream = state
        .http
        .post(format!("{}/chat/completions", state.upstream))
        .header("content-type", "application/json")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("simulator");
    let status = upstream.status().as_u16();
    let retry_after = upstream.headers().get("retry-after").cloned();
    let raw = upstream.bytes().await.expect("simulator body");
    if status != 200 {
        // The simulator's own answer (a 401 of a key check…), passed on as it is.
        let mut r = poem::Response::builder()
            .status(poem::http::StatusCode::from_u16(status).expect("status"))
            .content_type("application/json")
            .body(raw.to_vec());
        if let Some(v) = retry_after {
            r.headers_mut().insert("retry-after", v);
        }
        return r;
    }
    let Ok(mut answer) = serde_json::from_slice::<serde_json::Value>(&raw) else {
        return json_response(502, &error("proxy", "the simulator answered no JSON"));
    };
    let message = &mut answer["choices"][0]["message"];
    let content = message["content"].as_str().unwrap_or_default().to_string();
    let half = |s: &str| s.chars().take(s.chars().count() / 2).collect::<String>();
    match fault {
        Some(Fault::MalformedContent) => message["content"] = half(&content).into(),
        Some(Fault::LengthCut) => {
            message["content"] = half(&content).into();
            answer["choices"][0]["finish_reason"] = "length".into();
        }
        Some(Fault::Refusal) => {
            message["content"] = serde_json::Value::Null;
            message["refusal"] = "I'm sorry, I can't help with that request.".into();
        }
        Some(Fault::TruncatedBody) => {
            return poem::Response::builder()
                .content_type("application/json")
                .body(raw[..raw.len() / 2].to_vec());
        }
        _ => {}
    }
    json_response(status, &answer)
}
