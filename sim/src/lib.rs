//! Local simulators of callaudit's upstreams, speaking the real protocols so the
//! real HTTP clients can be pointed at them:
//!
//! * the CRM gateway under `/crm` (our own contract, see `docs/CRM-CONTRACT.md`),
//! * ElevenLabs speech-to-text under `/elevenlabs` (`POST /elevenlabs/v1/speech-to-text`),
//! * an OpenAI-compatible Chat Completions API under `/openai/v1`
//!   (`POST /openai/v1/chat/completions`, streaming and tool calls included),
//! * control endpoints under `/_sim` (`GET /_sim/stats`, `GET|POST /_sim/config`,
//!   `GET /_sim/llm/requests`: what the simulated LLM was sent, `POST /_sim/reset-stats`).
//!
//! Point the clients at a running simulator with
//! `CRM_BASE_URL=http://ADDR/crm`, `ELEVENLABS_BASE_URL=http://ADDR/elevenlabs` and
//! `OPENAI_BASE_URL=http://ADDR/openai/v1`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use callaudit_sim::{SimConfig, SimState, spawn};
//! let state = SimState::new(SimConfig::default());
//! let (addr, _handle) = spawn("127.0.0.1:0", state.clone()).await?;
//! println!("CRM_BASE_URL=http://{addr}/crm");
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod auditor;
mod crm;
mod dataset;
mod llm;
pub mod pusher;
pub mod smtp;
mod stt;
mod text;
mod transcripts;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use poem::{
    Body, Endpoint, EndpointExt, Request, Response, Route, Server, handler, http::StatusCode,
    listener::TcpAcceptor, web::Data,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use dataset::{
    Client, Commentaire, Commercial, Dataset, Fiche, Recording, SPEAKER_CLIENT, SPEAKER_CONSEILLER,
    Utterance, dataset,
};

/// The audit configuration used by the demo (6 steps, worded so that the
/// simulated auditor finds the points in the transcripts that contain them).
pub const SAMPLE_AUDIT_CONFIG_JSON: &str = include_str!("../data/sample-audit-config.json");

/// The quote a chat answer invents in fabricate mode: no transcript of the dataset
/// contains it.
pub const FABRICATED_CHAT_QUOTE: &str = auditor::FABRICATED_QUOTES[0];

/// Runtime knobs of the simulators. Every field has a default (all zero,
/// [`Fabricate::Never`], no point omitted or duplicated, no key checks), so a partial
/// JSON document is accepted by `POST /_sim/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Delay added to every vendor request (CRM, speech-to-text, LLM), in ms.
    pub latency_ms: u64,
    /// Probability (0–1) that a vendor request fails with a 5xx.
    pub error_rate: f64,
    /// Probability (0–1) that a vendor request gets a 429 with `Retry-After: 1`.
    pub rate_limit_rate: f64,
    /// Probability (0–1) that an LLM JSON answer is broken JSON.
    pub malformed_rate: f64,
    /// Probability (0–1) that an LLM answer is cut with `finish_reason: "length"`.
    pub truncate_rate: f64,
    /// Probability (0–1) that the LLM refuses (`message.refusal` set, content null).
    pub refusal_rate: f64,
    /// Probability (0–1) that a streamed LLM answer breaks after about half of its
    /// content: the connection is reset, with no finish reason, usage or `[DONE]`.
    pub stream_break_rate: f64,
    /// Pause between two chunks of a streamed LLM answer, in ms (a model generating).
    pub stream_interval_ms: u64,
    /// Whether the simulated auditor invents citations.
    pub fabricate: Fabricate,
    /// How the simulated auditor words its citations (verbatim by default; the other
    /// modes make the evidence gate see realistic near misses).
    pub quote_mode: QuoteMode,
    /// Control points the simulated auditor leaves out of every step answer, by
    /// position in the step's list (0-based, the `index` of the prompt), as a model that
    /// skips points does.
    pub omit_points: Vec<usize>,
    /// Control points the simulated auditor lists twice in every step answer (the same
    /// verdict repeated), by position as for `omit_points`.
    pub duplicate_points: Vec<usize>,
    /// Seed of the random generator (deterministic given the request order).
    pub seed: u64,
    /// When set, requests with a wrong or missing API key get a 401.
    pub expected_api_keys: Option<ExpectedKeys>,
    /// Days (`YYYY-MM-DD`) whose sales search always answers 500, as a CRM failing on
    /// one day would (to fail one day of a progressive fetch).
    pub fail_sales_dates: Vec<String>,
    /// When true, every chat completion request answers 401 `invalid_api_key`, as the
    /// real API does for a revoked key: a permanent vendor failure, whatever the key sent
    /// (the CRM and speech-to-text keep answering).
    pub llm_unauthorized: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            latency_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            malformed_rate: 0.0,
            truncate_rate: 0.0,
            refusal_rate: 0.0,
            stream_break_rate: 0.0,
            stream_interval_ms: 0,
            fabricate: Fabricate::Never,
            quote_mode: QuoteMode::Verbatim,
            omit_points: Vec::new(),
            duplicate_points: Vec::new(),
            seed: 0,
            expected_api_keys: None,
            fail_sales_dates: Vec::new(),
            llm_unauthorized: false,
        }
    }
}

impl SimConfig {
    /// Checks that every rate is a finite number in `[0, 1]`.
    pub fn validate(&self) -> Result<(), String> {
        let mut rates = vec![
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("malformed_rate", self.malformed_rate),
            ("truncate_rate", self.truncate_rate),
            ("refusal_rate", self.refusal_rate),
            ("stream_break_rate", self.stream_break_rate),
        ];
        if let Fabricate::Rate(r) = self.fabricate {
            rates.push(("fabricate.Rate", r));
        }
        for (name, r) in rates {
            if !r.is_finite() || !(0.0..=1.0).contains(&r) {
                return Err(format!("{name} must be a number between 0 and 1, got {r}"));
            }
        }
        if self.error_rate + self.rate_limit_rate > 1.0 {
            return Err("error_rate + rate_limit_rate must not exceed 1".to_owned());
        }
        Ok(())
    }

    fn sanitized(mut self) -> Self {
        let fix = |r: f64| {
            if r.is_finite() {
                r.clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        self.error_rate = fix(self.error_rate);
        self.rate_limit_rate = fix(self.rate_limit_rate);
        self.malformed_rate = fix(self.malformed_rate);
        self.truncate_rate = fix(self.truncate_rate);
        self.refusal_rate = fix(self.refusal_rate);
        self.stream_break_rate = fix(self.stream_break_rate);
        if let Fabricate::Rate(r) = self.fabricate {
            self.fabricate = Fabricate::Rate(fix(r));
        }
        self
    }
}

/// Whether the simulated auditor invents a citation that is NOT in the
/// transcript and claims the point PRESENT with it (in a chat answer: adds an invented
/// quote to the real ones).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum Fabricate {
    /// Never invent (the default).
    #[default]
    #[serde(alias = "never")]
    Never,
    /// Invent for every control point.
    #[serde(alias = "always")]
    Always,
    /// Invent for each control point with this probability (0–1).
    #[serde(alias = "rate")]
    Rate(f64),
}

/// How the simulated auditor quotes what it found (after deciding the statuses, so the
/// verdict it claims is the same in every mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuoteMode {
    /// The words as transcribed, with their recording, time and speaker (the default).
    #[default]
    Verbatim,
    /// The same idea in other words: the second half of the quote reworded.
    Paraphrase,
    /// The right words attributed to the other speaker.
    WrongSpeaker,
    /// The right words and speaker, a minute away from where they were said.
    ShiftTime,
    /// The right words, said to be in another recording of the fiche.
    OtherRecording,
    /// The right words as another speech-to-text run would spell them (accents dropped,
    /// a letter doubled here and there).
    AsrNoise,
}

/// The API keys the simulators accept when key checks are on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedKeys {
    /// Value expected in the CRM's `x-api-key` header.
    pub crm: String,
    /// Value expected in ElevenLabs' `xi-api-key` header.
    pub elevenlabs: String,
    /// Value expected in OpenAI's `Authorization: Bearer` header.
    pub openai: String,
}

/// Request counters (served by `GET /_sim/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// `GET /crm/fiches/{id}` requests received (errors included).
    pub crm_detail_requests: u64,
    /// Highest number of detail requests in flight at once.
    pub crm_detail_max_in_flight: u64,
    /// Detail requests in flight right now.
    pub crm_detail_in_flight: u64,
    /// `GET /crm/sales-with-calls` requests received (errors included).
    pub crm_sales_requests: u64,
    /// Highest number of sales searches in flight at once.
    pub crm_sales_max_in_flight: u64,
    /// Sales searches in flight right now.
    pub crm_sales_in_flight: u64,
    /// Sales searches received per searched day (`YYYY-MM-DD`, valid dates only, errors
    /// included).
    pub crm_sales_requests_by_date: std::collections::BTreeMap<String, u64>,
    /// `GET /crm/recordings/{id}.mp3` downloads.
    pub crm_recording_requests: u64,
    /// Speech-to-text requests received.
    pub stt_requests: u64,
    /// Speech-to-text requests per recording they named (faulted ones included; a request
    /// naming no valid recording is counted in `stt_requests` only).
    pub stt_requests_by_recording: std::collections::BTreeMap<String, u64>,
    /// Speech-to-text requests answered with a transcript, per recording.
    pub stt_transcripts_by_recording: std::collections::BTreeMap<String, u64>,
    /// Chat completion requests received.
    pub llm_requests: u64,
    /// Tool calls emitted by the simulated model.
    pub llm_tool_calls: u64,
    /// Chat completion requests that offered tools (transcript-tools mode).
    pub llm_tool_requests: u64,
    /// Tool results received: the `tool` messages that end a request, each counted once
    /// (equals `llm_tool_calls` when the client answered every call).
    pub llm_tool_results: u64,
}

#[derive(Default)]
struct Counters {
    crm_detail_requests: AtomicU64,
    crm_detail_max_in_flight: AtomicU64,
    crm_detail_in_flight: AtomicU64,
    crm_sales_requests: AtomicU64,
    crm_sales_max_in_flight: AtomicU64,
    crm_sales_in_flight: AtomicU64,
    crm_recording_requests: AtomicU64,
    stt_requests: AtomicU64,
    llm_requests: AtomicU64,
    llm_tool_calls: AtomicU64,
    llm_tool_requests: AtomicU64,
    llm_tool_results: AtomicU64,
}

/// Shared state of a simulator: runtime-changeable config, dataset, random
/// generator and counters.
pub struct SimState {
    config: RwLock<SimConfig>,
    rng: Mutex<StdRng>,
    dataset: Dataset,
    counters: Counters,
    seq: AtomicU64,
    /// Bodies of the last [`LLM_REQUESTS_KEPT`] chat completion requests, oldest first.
    llm_log: Mutex<std::collections::VecDeque<Value>>,
    /// Sales searches per searched day.
    sales_by_date: Mutex<std::collections::BTreeMap<String, u64>>,
    /// Speech-to-text requests and transcripts answered, per recording.
    stt_by_recording: Mutex<SttByRecording>,
}

/// Speech-to-text requests and transcripts answered, per recording.
#[derive(Default)]
struct SttByRecording {
    requests: std::collections::BTreeMap<String, u64>,
    transcripts: std::collections::BTreeMap<String, u64>,
}

/// Chat completion requests `GET /_sim/llm/requests` keeps (the latest ones).
pub const LLM_REQUESTS_KEPT: usize = 100;

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState")
            .field("config", &self.config())
            .field("fiches", &self.dataset.fiches.len())
            .field("stats", &self.stats())
            .finish()
    }
}

/// An injected vendor failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    RateLimited,
    ServerError,
}

/// Counts a request as in flight until dropped (also on error paths and when
/// the client goes away).
pub(crate) struct InFlight<'a> {
    current: &'a AtomicU64,
}

impl<'a> InFlight<'a> {
    fn enter(current: &'a AtomicU64, max: &AtomicU64) -> Self {
        let now = current.fetch_add(1, Ordering::SeqCst) + 1;
        max.fetch_max(now, Ordering::SeqCst);
        InFlight { current }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.current.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SimState {
    /// A simulator serving the built-in fiches.
    pub fn new(cfg: SimConfig) -> Arc<Self> {
        Self::with_dataset(cfg, dataset().clone())
    }

    /// A simulator serving the built-in fiches plus `extra` generated ones
    /// (`FICHE-GEN-{i}`, two recordings each, sold on 2026-11-10).
    pub fn with_generated_fiches(cfg: SimConfig, extra: usize) -> Arc<Self> {
        Self::with_dataset(cfg, Dataset::with_generated(extra))
    }

    /// A simulator serving an arbitrary dataset.
    pub fn with_dataset(cfg: SimConfig, data: Dataset) -> Arc<Self> {
        let cfg = cfg.sanitized();
        Arc::new(SimState {
            rng: Mutex::new(StdRng::seed_from_u64(cfg.seed)),
            config: RwLock::new(cfg),
            dataset: data,
            counters: Counters::default(),
            seq: AtomicU64::new(0),
            llm_log: Mutex::new(std::collections::VecDeque::new()),
            sales_by_date: Mutex::new(std::collections::BTreeMap::new()),
            stt_by_recording: Mutex::new(SttByRecording::default()),
        })
    }

    /// Replaces the config (rates are clamped to `[0, 1]`) and reseeds the
    /// random generator with its seed.
    pub fn set_config(&self, cfg: SimConfig) {
        let cfg = cfg.sanitized();
        *self.rng.lock().unwrap_or_else(PoisonError::into_inner) = StdRng::seed_from_u64(cfg.seed);
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = cfg;
    }

    /// The current config.
    pub fn config(&self) -> SimConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The fiches this simulator serves.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::SeqCst);
        let (stt_requests_by_recording, stt_transcripts_by_recording) = {
            let stt = self
                .stt_by_recording
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (stt.requests.clone(), stt.transcripts.clone())
        };
        SimStats {
            crm_detail_requests: l(&c.crm_detail_requests),
            crm_detail_max_in_flight: l(&c.crm_detail_max_in_flight),
            crm_detail_in_flight: l(&c.crm_detail_in_flight),
            crm_sales_requests: l(&c.crm_sales_requests),
            crm_sales_max_in_flight: l(&c.crm_sales_max_in_flight),
            crm_sales_in_flight: l(&c.crm_sales_in_flight),
            crm_sales_requests_by_date: self
                .sales_by_date
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            crm_recording_requests: l(&c.crm_recording_requests),
            stt_requests: l(&c.stt_requests),
            stt_requests_by_recording,
            stt_transcripts_by_recording,
            llm_requests: l(&c.llm_requests),
            llm_tool_calls: l(&c.llm_tool_calls),
            llm_tool_requests: l(&c.llm_tool_requests),
            llm_tool_results: l(&c.llm_tool_results),
        }
    }

    /// The bodies of the last [`LLM_REQUESTS_KEPT`] chat completion requests received
    /// (every one that was JSON, valid or not, answered or faulted), oldest first.
    pub fn llm_requests(&self) -> Vec<Value> {
        self.llm_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Keeps the body of a chat completion request.
    pub(crate) fn record_llm_request(&self, body: &Value) {
        let mut log = self.llm_log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() == LLM_REQUESTS_KEPT {
            log.pop_front();
        }
        log.push_back(body.clone());
    }

    /// Zeroes the counters and forgets the recorded LLM requests; the max-in-flight
    /// values restart from the requests currently in flight.
    pub fn reset_stats(&self) {
        self.llm_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.sales_by_date
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *self
            .stt_by_recording
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = SttByRecording::default();
        let c = &self.counters;
        let z = |a: &AtomicU64| a.store(0, Ordering::SeqCst);
        z(&c.crm_detail_requests);
        z(&c.crm_sales_requests);
        z(&c.crm_recording_requests);
        z(&c.stt_requests);
        z(&c.llm_requests);
        z(&c.llm_tool_calls);
        z(&c.llm_tool_requests);
        z(&c.llm_tool_results);
        c.crm_detail_max_in_flight.store(
            c.crm_detail_in_flight.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
        c.crm_sales_max_in_flight.store(
            c.crm_sales_in_flight.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
    }

    /// A uniform draw in `[0, 1)`.
    pub(crate) fn roll(&self) -> f64 {
        self.rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .random::<f64>()
    }

    /// A monotonically increasing sequence number (ids, keys).
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Sleeps for the configured latency.
    pub(crate) async fn delay(&self) {
        let ms = self.config().latency_ms;
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    /// Decides whether this vendor request fails (one draw per request).
    pub(crate) fn fault(&self) -> Option<Fault> {
        let cfg = self.config();
        if cfg.rate_limit_rate <= 0.0 && cfg.error_rate <= 0.0 {
            return None;
        }
        let x = self.roll();
        let fault = if x < cfg.rate_limit_rate {
            Some(Fault::RateLimited)
        } else if x < cfg.rate_limit_rate + cfg.error_rate {
            Some(Fault::ServerError)
        } else {
            None
        };
        if let Some(f) = fault {
            tracing::debug!(fault = ?f, "sim: injecting vendor failure");
        }
        fault
    }

    pub(crate) fn detail_in_flight(&self) -> InFlight<'_> {
        self.counters
            .crm_detail_requests
            .fetch_add(1, Ordering::SeqCst);
        InFlight::enter(
            &self.counters.crm_detail_in_flight,
            &self.counters.crm_detail_max_in_flight,
        )
    }

    pub(crate) fn sales_in_flight(&self) -> InFlight<'_> {
        self.counters
            .crm_sales_requests
            .fetch_add(1, Ordering::SeqCst);
        InFlight::enter(
            &self.counters.crm_sales_in_flight,
            &self.counters.crm_sales_max_in_flight,
        )
    }

    /// Counts a sales search of `date` (`YYYY-MM-DD`).
    pub(crate) fn count_sales_date(&self, date: &str) {
        *self
            .sales_by_date
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(date.to_owned())
            .or_insert(0) += 1;
    }

    pub(crate) fn count_recording(&self) {
        self.counters
            .crm_recording_requests
            .fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn count_stt(&self) {
        self.counters.stt_requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a speech-to-text request naming `recording_id`, and whether it is answered
    /// with its transcript.
    pub(crate) fn count_stt_recording(&self, recording_id: &str, answered: bool) {
        let mut stt = self
            .stt_by_recording
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let map = if answered {
            &mut stt.transcripts
        } else {
            &mut stt.requests
        };
        *map.entry(recording_id.to_owned()).or_insert(0) += 1;
    }

    pub(crate) fn count_llm(&self) {
        self.counters.llm_requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn add_tool_calls(&self, n: u64) {
        self.counters.llm_tool_calls.fetch_add(n, Ordering::SeqCst);
    }

    pub(crate) fn count_tool_request(&self) {
        self.counters
            .llm_tool_requests
            .fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn add_tool_results(&self, n: u64) {
        self.counters
            .llm_tool_results
            .fetch_add(n, Ordering::SeqCst);
    }
}

/// A JSON response with this status.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

/// The value of a header, if present and valid UTF-8.
pub(crate) fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

#[handler]
async fn sim_stats(Data(state): Data<&Arc<SimState>>) -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::to_value(state.stats()).unwrap_or(Value::Null),
    )
}

#[handler]
async fn sim_get_config(Data(state): Data<&Arc<SimState>>) -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::to_value(state.config()).unwrap_or(Value::Null),
    )
}

#[handler]
async fn sim_set_config(Data(state): Data<&Arc<SimState>>, body: Body) -> Response {
    let bytes = match body.into_vec().await {
        Ok(b) => b,
        Err(e) => {
            return json_response(StatusCode::BAD_REQUEST, &json!({ "error": e.to_string() }));
        }
    };
    let cfg: SimConfig = match serde_json::from_slice(&bytes) {
        Ok(c) => c,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "error": format!("invalid SimConfig: {e}") }),
            );
        }
    };
    if let Err(e) = cfg.validate() {
        return json_response(StatusCode::BAD_REQUEST, &json!({ "error": e }));
    }
    tracing::info!(?cfg.latency_ms, cfg.error_rate, cfg.rate_limit_rate, "sim: config changed");
    state.set_config(cfg);
    json_response(
        StatusCode::OK,
        &serde_json::to_value(state.config()).unwrap_or(Value::Null),
    )
}

#[handler]
async fn sim_reset_stats(Data(state): Data<&Arc<SimState>>) -> Response {
    state.reset_stats();
    json_response(
        StatusCode::OK,
        &serde_json::to_value(state.stats()).unwrap_or(Value::Null),
    )
}

#[handler]
async fn sim_llm_requests(Data(state): Data<&Arc<SimState>>) -> Response {
    json_response(StatusCode::OK, &json!({ "requests": state.llm_requests() }))
}

#[handler]
async fn sim_health() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

/// All three simulators and the control endpoints:
///
/// | method | path |
/// |---|---|
/// | GET | `/crm/sales-with-calls?date=YYYY-MM-DD` |
/// | GET | `/crm/fiches/{fiche_id}` |
/// | GET | `/crm/recordings/{recording_id}.mp3` |
/// | POST | `/elevenlabs/v1/speech-to-text` |
/// | POST | `/openai/v1/chat/completions` |
/// | GET | `/openai/v1/models` |
/// | GET | `/_sim/stats`, `/_sim/config`, `/_sim/health` |
/// | GET | `/_sim/llm/requests`: `{"requests": [...]}`, the bodies of the last 100 chat completion requests, oldest first |
/// | POST | `/_sim/config`, `/_sim/reset-stats` |
pub fn router(state: Arc<SimState>) -> impl Endpoint<Output = Response> {
    use poem::{get, post};
    Route::new()
        .at("/crm/sales-with-calls", get(crm::sales_with_calls))
        .at("/crm/fiches/:fiche_id", get(crm::fiche_detail))
        .at("/crm/recordings/:file", get(crm::recording_file))
        .at("/elevenlabs/v1/speech-to-text", post(stt::speech_to_text))
        .at("/openai/v1/chat/completions", post(llm::chat_completions))
        .at("/openai/v1/models", get(llm::list_models))
        .at("/_sim/stats", get(sim_stats))
        .at("/_sim/config", get(sim_get_config).post(sim_set_config))
        .at("/_sim/reset-stats", post(sim_reset_stats))
        .at("/_sim/llm/requests", get(sim_llm_requests))
        .at("/_sim/health", get(sim_health))
        .data(state)
}

/// Serves the simulators on an already bound listener (bind on port 0 and read
/// `local_addr()` first to learn the address). Runs until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<SimState>) -> std::io::Result<()> {
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    Server::new_with_acceptor(acceptor).run(router(state)).await
}

/// Binds `addr` (e.g. `127.0.0.1:0`), then serves the simulators on a spawned
/// task; returns the real bound address and the task handle (abort it to stop).
pub async fn spawn(
    addr: &str,
    state: Arc<SimState>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let handle = tokio::spawn(serve(listener, state));
    Ok((local, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_audit_config_has_six_steps_with_two_to_four_points() {
        let v: Value = serde_json::from_str(SAMPLE_AUDIT_CONFIG_JSON).expect("valid json");
        let steps = v["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), 6);
        for (i, s) in steps.iter().enumerate() {
            assert_eq!(s["position"].as_u64(), Some(i as u64 + 1));
            let n = s["control_points"].as_array().map(Vec::len).unwrap_or(0);
            assert!((2..=4).contains(&n));
        }
        let critical: Vec<u64> = steps
            .iter()
            .filter(|s| s["critical"] == json!(true))
            .filter_map(|s| s["position"].as_u64())
            .collect();
        assert_eq!(critical, vec![2, 5]);
    }

    #[test]
    fn config_accepts_partial_json_and_rejects_bad_rates() {
        let c: SimConfig =
            serde_json::from_str(r#"{"latency_ms": 5, "fabricate": {"Rate": 0.5}}"#).unwrap();
        assert_eq!(c.latency_ms, 5);
        assert_eq!(c.fabricate, Fabricate::Rate(0.5));
        assert!(c.validate().is_ok());
        let c: SimConfig = serde_json::from_str(r#"{"fabricate": "always"}"#).unwrap();
        assert_eq!(c.fabricate, Fabricate::Always);
        assert!(c.omit_points.is_empty() && c.duplicate_points.is_empty());
        let c: SimConfig =
            serde_json::from_str(r#"{"omit_points": [0], "duplicate_points": [1, 2]}"#).unwrap();
        assert_eq!((c.omit_points, c.duplicate_points), (vec![0], vec![1, 2]));
        let bad = SimConfig {
            error_rate: 1.5,
            ..SimConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
