//! OpenAI-compatible Chat Completions simulator:
//! `POST /openai/v1/chat/completions` (JSON or SSE streaming, tool calls).

use std::sync::Arc;

use futures::{StreamExt, stream};
use poem::{
    Body, Request, Response, handler,
    http::{HeaderValue, StatusCode},
    web::Data,
};
use serde_json::{Value, json};

use crate::{
    Fabricate, Fault, SimState,
    auditor::{self, Segment},
    header, json_response,
    text::{cut_chars, keyword_query},
};

const REFUSAL: &str = "Je suis désolé, mais je ne peux pas traiter cette demande.";

fn openai_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    json_response(
        status,
        &json!({ "error": { "message": message, "type": kind, "param": param, "code": code } }),
    )
}

fn bad_request(message: &str, param: Option<&str>) -> Response {
    openai_error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        None,
    )
}

fn fault_response(f: Fault) -> Response {
    match f {
        Fault::RateLimited => {
            let mut r = openai_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for requests. Please try again in 1s.",
                "requests",
                None,
                Some("rate_limit_exceeded"),
            );
            let h = r.headers_mut();
            h.insert("retry-after", HeaderValue::from_static("1"));
            h.insert(
                "x-ratelimit-remaining-requests",
                HeaderValue::from_static("0"),
            );
            h.insert("x-ratelimit-reset-requests", HeaderValue::from_static("1s"));
            r
        }
        Fault::ServerError => openai_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        ),
    }
}

/// 401 when key checks are on (or always, with `llm_unauthorized`); the message echoes
/// the key like the real API does (partially), so callers must sanitise upstream error
/// bodies.
fn check_key(state: &SimState, req: &Request) -> Option<Response> {
    let cfg = state.config();
    if cfg.llm_unauthorized {
        return Some(openai_error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ));
    }
    let expected = cfg.expected_api_keys?;
    let provided = header(req, "authorization").and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim)
    });
    match provided {
        Some(k) if k == expected.openai => None,
        Some(k) => Some(openai_error(
            StatusCode::UNAUTHORIZED,
            &format!(
                "Incorrect API key provided: {k}. You can find your API key at https://platform.openai.com/account/api-keys."
            ),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        )),
        None => Some(openai_error(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
            None,
        )),
    }
}

/// One chat message, reduced to what the simulated model reads.
struct Msg {
    role: String,
    content: String,
    /// `tool_call_id` of a `tool` message.
    tool_call_id: Option<String>,
    /// Ids of the `tool_calls` of an `assistant` message.
    tool_call_ids: Vec<String>,
}

/// What the simulated model reads from a request.
struct ChatReq {
    model: String,
    messages: Vec<Msg>,
    /// Function tool names offered.
    tools: Vec<String>,
    tool_choice_none: bool,
    json_format: bool,
    stream: bool,
    include_usage: bool,
    max_tokens: Option<u64>,
    prompt_chars: usize,
}

fn content_text(v: &Value) -> Result<String, String> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => Ok(parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("text").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")),
        _ => Err("content must be a string, an array of content parts or null".to_owned()),
    }
}

fn parse_request(v: &Value) -> Result<ChatReq, Box<Response>> {
    let Some(obj) = v.as_object() else {
        return Err(Box::new(bad_request(
            "The request body must be a JSON object.",
            None,
        )));
    };
    let model = match obj.get("model").and_then(Value::as_str) {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => {
            return Err(Box::new(bad_request(
                "you must provide a model parameter",
                Some("model"),
            )));
        }
    };
    let Some(raw_messages) = obj.get("messages").and_then(Value::as_array) else {
        return Err(Box::new(bad_request(
            "Missing required parameter: 'messages'.",
            Some("messages"),
        )));
    };
    if raw_messages.is_empty() {
        return Err(Box::new(bad_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            Some("messages"),
        )));
    }
    let mut messages = Vec::with_capacity(raw_messages.len());
    let mut prompt_chars = 0usize;
    for (i, m) in raw_messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if !matches!(role, "system" | "developer" | "user" | "assistant" | "tool") {
            return Err(Box::new(bad_request(
                &format!(
                    "Invalid value for 'messages[{i}].role': expected one of system, developer, user, assistant, tool."
                ),
                Some(&format!("messages[{i}].role")),
            )));
        }
        let content = match content_text(m.get("content").unwrap_or(&Value::Null)) {
            Ok(c) => c,
            Err(e) => {
                return Err(Box::new(bad_request(
                    &format!("Invalid 'messages[{i}].content': {e}"),
                    Some(&format!("messages[{i}].content")),
                )));
            }
        };
        prompt_chars += content.chars().count()
            + m.get("tool_calls")
                .map(|t| t.to_string().len())
                .unwrap_or(0);
        messages.push(Msg {
            role: role.to_owned(),
            content,
            tool_call_id: m
                .get("tool_call_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            tool_call_ids: m
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect(),
        });
    }
    check_tool_flow(&messages)?;
    let mut tools = Vec::new();
    if let Some(t) = obj.get("tools") {
        let Some(list) = t.as_array() else {
            return Err(Box::new(bad_request(
                "Invalid 'tools': expected an array.",
                Some("tools"),
            )));
        };
        for tool in list {
            match tool
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
            {
                Some(name) => tools.push(name.to_owned()),
                None => {
                    return Err(Box::new(bad_request(
                        "Invalid 'tools': each tool needs function.name.",
                        Some("tools"),
                    )));
                }
            }
        }
        prompt_chars += t.to_string().len();
    }
    if obj.get("tool_choice").is_some_and(|c| !c.is_null()) && tools.is_empty() {
        return Err(Box::new(bad_request(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            Some("tool_choice"),
        )));
    }
    let tool_choice_none = obj.get("tool_choice").and_then(Value::as_str) == Some("none");
    let json_format = obj
        .get("response_format")
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "json_schema" || t == "json_object");
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Box::new(bad_request(
                "Invalid type for 'stream': expected a boolean.",
                Some("stream"),
            )));
        }
    };
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let max_tokens = obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
        .and_then(Value::as_u64);
    Ok(ChatReq {
        model,
        messages,
        tools,
        tool_choice_none,
        json_format,
        stream,
        include_usage,
        max_tokens,
        prompt_chars,
    })
}

/// Rejects what the real API rejects in a tool-calling conversation: a `tool` message
/// without `tool_call_id`, or not answering a call of the assistant message just before
/// it, and an assistant message whose tool calls are not all answered right after it.
fn check_tool_flow(messages: &[Msg]) -> Result<(), Box<Response>> {
    let unanswered = |i: usize, ids: &[String]| {
        Box::new(bad_request(
            &format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                ids.join(", ")
            ),
            Some(&format!("messages.[{i}].role")),
        ))
    };
    // The latest assistant message with tool calls, and its calls not answered yet.
    let mut pending: Option<(usize, Vec<String>)> = None;
    for (i, m) in messages.iter().enumerate() {
        if m.role == "tool" {
            let Some(id) = &m.tool_call_id else {
                return Err(Box::new(bad_request(
                    "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.",
                    Some(&format!("messages.[{i}].tool_call_id")),
                )));
            };
            match pending.as_mut() {
                Some((_, ids)) if ids.contains(id) => ids.retain(|x| x != id),
                _ => {
                    return Err(Box::new(bad_request(
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                        Some(&format!("messages.[{i}].role")),
                    )));
                }
            }
            continue;
        }
        if let Some((j, ids)) = &pending
            && !ids.is_empty()
        {
            return Err(unanswered(*j, ids));
        }
        pending = (m.role == "assistant" && !m.tool_call_ids.is_empty())
            .then(|| (i, m.tool_call_ids.clone()));
    }
    match pending {
        Some((j, ids)) if !ids.is_empty() => Err(unanswered(j, &ids)),
        _ => Ok(()),
    }
}

/// What the simulated model answers.
enum Outcome {
    ToolCalls(Vec<(String, String, String)>),
    Content { text: String, finish: &'static str },
    Refusal(String),
}

fn find_tool<'a>(req: &'a ChatReq, canonical: &str) -> Option<&'a str> {
    req.tools
        .iter()
        .find(|t| t.to_ascii_lowercase().replace('_', "") == canonical)
        .map(String::as_str)
}

/// Parses a JSON object from message content, tolerating text or code fences
/// around it.
fn json_object_in(content: &str) -> Option<Value> {
    let t = content.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return v.is_object().then_some(v);
    }
    let (start, end) = (t.find('{')?, t.rfind('}')?);
    if end <= start {
        return None;
    }
    serde_json::from_str::<Value>(&t[start..=end])
        .ok()
        .filter(Value::is_object)
}

/// The user message carrying the audit document, newest first.
fn audit_doc(req: &ChatReq) -> Option<Value> {
    req.messages
        .iter()
        .rev()
        .filter(|m| m.role == "user")
        .find_map(|m| {
            let v = json_object_in(&m.content)?;
            v.get("control_points")
                .is_some_and(Value::is_array)
                .then_some(v)
        })
}

fn segment_from(v: &Value, recording_id: Option<&str>, index: Option<i64>) -> Option<Segment> {
    let text = v.get("text").and_then(Value::as_str)?;
    let recording_id = v
        .get("recording_id")
        .and_then(Value::as_str)
        .or(recording_id)?;
    Some(Segment {
        recording_id: recording_id.to_owned(),
        index: v.get("index").and_then(Value::as_i64).or(index),
        speaker: v.get("speaker").and_then(Value::as_str).map(str::to_owned),
        start_s: v.get("start_s").and_then(Value::as_f64),
        text: text.to_owned(),
    })
}

/// Segments from the transcripts of a prompt-mode document.
fn prompt_segments(doc: &Value) -> Vec<Segment> {
    let mut out = Vec::new();
    for t in doc
        .get("transcripts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let rid = t.get("recording_id").and_then(Value::as_str);
        for (i, u) in t
            .get("utterances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(s) = segment_from(u, rid, Some(i as i64)) {
                out.push(s);
            }
        }
    }
    out
}

/// Segments returned by our tools (`matches` / `chunks`), de-duplicated and in
/// transcript order; also whether a getTranscriptChunks result was seen.
fn tool_segments(req: &ChatReq) -> (Vec<Segment>, bool, bool) {
    let mut out: Vec<Segment> = Vec::new();
    let mut any_tool = false;
    let mut saw_chunks = false;
    for m in req.messages.iter().filter(|m| m.role == "tool") {
        any_tool = true;
        let Ok(v) = serde_json::from_str::<Value>(m.content.trim()) else {
            continue;
        };
        let mut items: Vec<&Value> = Vec::new();
        if let Some(a) = v.get("matches").and_then(Value::as_array) {
            items.extend(a);
        }
        if let Some(a) = v.get("chunks").and_then(Value::as_array) {
            saw_chunks = true;
            items.extend(a);
        }
        if let Some(a) = v.as_array() {
            items.extend(a);
        }
        for it in items {
            if let Some(s) = segment_from(it, None, None)
                && !out.iter().any(|o| {
                    o.recording_id == s.recording_id && o.index == s.index && o.text == s.text
                })
            {
                out.push(s);
            }
        }
    }
    out.sort_by(|a, b| {
        a.recording_id.cmp(&b.recording_id).then(
            a.index
                .unwrap_or(i64::MAX)
                .cmp(&b.index.unwrap_or(i64::MAX)),
        )
    });
    (out, any_tool, saw_chunks)
}

fn control_points(doc: &Value) -> Vec<(Value, String)> {
    doc.get("control_points")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, cp)| match cp {
            Value::String(s) => Some((json!(i), s.clone())),
            Value::Object(o) => {
                let point = o
                    .get("point")
                    .or_else(|| o.get("text"))
                    .and_then(Value::as_str)?;
                Some((
                    o.get("index").cloned().unwrap_or(json!(i)),
                    point.to_owned(),
                ))
            }
            _ => None,
        })
        .collect()
}

fn recording_ids(doc: &Value) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for key in ["transcripts", "recordings"] {
        for r in doc.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = r.get("recording_id").and_then(Value::as_str) {
                let count = r
                    .get("utterance_count")
                    .and_then(Value::as_u64)
                    .or_else(|| {
                        r.get("utterances")
                            .and_then(Value::as_array)
                            .map(|a| a.len() as u64)
                    })
                    .unwrap_or(0);
                out.push((id.to_owned(), count));
            }
        }
    }
    out
}

fn call_id(state: &SimState) -> String {
    let n = state.next_seq();
    format!(
        "call_sim{:016x}",
        n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ state.config().seed
    )
}

/// Runs the simulated model.
fn run_model(state: &SimState, req: &ChatReq) -> Outcome {
    let cfg = state.config();
    let Some(doc) = audit_doc(req) else {
        let question = req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.as_str())
            .unwrap_or("");
        // The context is what the caller gave as such (system messages): earlier answers
        // in the conversation are not transcript, so they are never quoted.
        let context: String = req
            .messages
            .iter()
            .filter(|m| matches!(m.role.as_str(), "system" | "developer"))
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let invent = match cfg.fabricate {
            Fabricate::Never => false,
            Fabricate::Always => true,
            Fabricate::Rate(r) => state.roll() < r,
        };
        let invented = invent.then_some(crate::FABRICATED_CHAT_QUOTE);
        return finish_text(
            state,
            req,
            auditor::chat_answer(question, &context, invented),
            false,
        );
    };

    let points = control_points(&doc);
    let recordings = recording_ids(&doc);
    let tools_mode = doc.get("mode").and_then(Value::as_str) == Some("tools")
        || (doc.get("transcripts").is_none() && !req.tools.is_empty());
    let segments = if tools_mode {
        let (segs, any_tool, saw_chunks) = tool_segments(req);
        let search = find_tool(req, "searchtranscript");
        let chunks = find_tool(req, "gettranscriptchunks");
        if !req.tool_choice_none {
            if !any_tool && let Some(name) = search {
                let calls: Vec<(String, String, String)> = points
                    .iter()
                    .map(|(_, p)| {
                        let q = keyword_query(p);
                        let q = if q.is_empty() { p.clone() } else { q };
                        let args = json!({ "query": q, "recording_id": Value::Null }).to_string();
                        (call_id(state), name.to_owned(), args)
                    })
                    .collect();
                if !calls.is_empty() {
                    return Outcome::ToolCalls(calls);
                }
            }
            // Searches found nothing at all: read the beginning of each call instead.
            if any_tool
                && segs.is_empty()
                && !saw_chunks
                && let Some(name) = chunks
            {
                let calls: Vec<(String, String, String)> = recordings
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(id, n)| {
                        let args = json!({ "recording_id": id, "from_index": 0, "to_index": (*n).min(40) - 1 }).to_string();
                        (call_id(state), name.to_owned(), args)
                    })
                    .collect();
                if !calls.is_empty() {
                    return Outcome::ToolCalls(calls);
                }
            }
        }
        segs
    } else {
        prompt_segments(&doc)
    };

    let fallback_rec = recordings
        .first()
        .map(|(id, _)| id.clone())
        .or_else(|| segments.first().map(|s| s.recording_id.clone()))
        .unwrap_or_else(|| "unknown".to_owned());
    let mut verdicts: Vec<auditor::Verdict> = points
        .iter()
        .map(|(i, p)| auditor::evaluate(i.clone(), p, &segments))
        .collect();
    for (n, v) in verdicts.iter_mut().enumerate() {
        let invent = match cfg.fabricate {
            Fabricate::Never => false,
            Fabricate::Always => true,
            Fabricate::Rate(r) => state.roll() < r,
        };
        if invent {
            auditor::fabricate(v, &fallback_rec, n);
        }
    }
    if cfg.quote_mode != crate::QuoteMode::Verbatim {
        let ids: Vec<String> = recordings.iter().map(|(id, _)| id.clone()).collect();
        for v in &mut verdicts {
            auditor::distort(v, cfg.quote_mode, &ids);
        }
    }
    // A model that skips or repeats control points (after the draws above, so a run
    // with the same seed draws the same numbers).
    let verdicts: Vec<auditor::Verdict> = verdicts
        .into_iter()
        .enumerate()
        .filter(|(n, _)| !cfg.omit_points.contains(n))
        .flat_map(|(n, v)| {
            let times = if cfg.duplicate_points.contains(&n) {
                2
            } else {
                1
            };
            std::iter::repeat_n(v, times)
        })
        .collect();
    let step_name = doc
        .get("step")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str);
    let answer = auditor::answer_json(step_name, &verdicts).to_string();
    finish_text(state, req, answer, true)
}

/// Applies the refusal / truncation / malformed knobs and `max_tokens`.
fn finish_text(state: &SimState, req: &ChatReq, text: String, is_json: bool) -> Outcome {
    let cfg = state.config();
    // Always three draws, in this order, so runs are reproducible.
    let (r_refuse, r_trunc, r_malformed) = (state.roll(), state.roll(), state.roll());
    if r_refuse < cfg.refusal_rate {
        return Outcome::Refusal(REFUSAL.to_owned());
    }
    let len = text.chars().count();
    if r_trunc < cfg.truncate_rate {
        return Outcome::Content {
            text: cut_chars(&text, (len * 55 / 100).max(1)).to_owned(),
            finish: "length",
        };
    }
    if let Some(max) = req.max_tokens {
        let max_chars = usize::try_from(max.saturating_mul(4)).unwrap_or(usize::MAX);
        if len > max_chars {
            return Outcome::Content {
                text: cut_chars(&text, max_chars).to_owned(),
                finish: "length",
            };
        }
    }
    if (is_json || req.json_format) && r_malformed < cfg.malformed_rate {
        let cut = cut_chars(&text, (len * 70 / 100).max(1));
        return Outcome::Content {
            text: format!("{cut}\n,,]}}"),
            finish: "stop",
        };
    }
    Outcome::Content {
        text,
        finish: "stop",
    }
}

fn tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4).max(1)
}

fn tool_call_json(i: usize, (id, name, args): &(String, String, String)) -> Value {
    json!({ "index": i, "id": id, "type": "function", "function": { "name": name, "arguments": args } })
}

/// `POST /openai/v1/chat/completions`
#[handler]
pub(crate) async fn chat_completions(
    req: &Request,
    Data(state): Data<&Arc<SimState>>,
    body: Body,
) -> Response {
    state.count_llm();
    state.delay().await;
    // Every request received is recorded, whatever the answer (a fault, a 401…).
    let body = body.into_vec().await;
    let parsed: Option<Value> = body
        .as_ref()
        .ok()
        .and_then(|b| serde_json::from_slice(b).ok());
    if let Some(v) = &parsed {
        state.record_llm_request(v);
    }
    if let Some(r) = check_key(state, req) {
        return r;
    }
    if let Some(f) = state.fault() {
        return fault_response(f);
    }
    if body.is_err() {
        return bad_request("Could not read the request body.", None);
    }
    let Some(v) = parsed else {
        return bad_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
            None,
        );
    };
    let chat = match parse_request(&v) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if !chat.tools.is_empty() {
        state.count_tool_request();
    }
    // The results of the latest tool round: the tool messages ending the conversation.
    let results = chat
        .messages
        .iter()
        .rev()
        .take_while(|m| m.role == "tool")
        .count();
    state.add_tool_results(results as u64);
    let outcome = run_model(state, &chat);
    if let Outcome::ToolCalls(calls) = &outcome {
        state.add_tool_calls(calls.len() as u64);
    }
    let id = format!("chatcmpl-sim{:08}", state.next_seq());
    let created = chrono::Utc::now().timestamp();
    let completion_chars = match &outcome {
        Outcome::ToolCalls(c) => c.iter().map(|(_, n, a)| n.len() + a.len()).sum(),
        Outcome::Content { text, .. } => text.chars().count(),
        Outcome::Refusal(r) => r.chars().count(),
    };
    let (pt, ct) = (tokens(chat.prompt_chars), tokens(completion_chars));
    let usage = json!({
        "prompt_tokens": pt,
        "completion_tokens": ct,
        "total_tokens": pt + ct,
        "prompt_tokens_details": { "cached_tokens": 0 },
        "completion_tokens_details": { "reasoning_tokens": 0 },
    });
    if chat.stream {
        stream_response(state, &id, created, &chat, outcome, usage)
    } else {
        let (message, finish) = match &outcome {
            Outcome::ToolCalls(calls) => (
                json!({
                    "role": "assistant", "content": Value::Null, "refusal": Value::Null,
                    "tool_calls": calls.iter().map(|c| {
                        let mut j = tool_call_json(0, c);
                        if let Some(o) = j.as_object_mut() { o.remove("index"); }
                        j
                    }).collect::<Vec<_>>(),
                    "annotations": [],
                }),
                "tool_calls",
            ),
            Outcome::Content { text, finish } => (
                json!({ "role": "assistant", "content": text, "refusal": Value::Null, "annotations": [] }),
                *finish,
            ),
            Outcome::Refusal(r) => (
                json!({ "role": "assistant", "content": Value::Null, "refusal": r, "annotations": [] }),
                "stop",
            ),
        };
        json_response(
            StatusCode::OK,
            &json!({
                "id": id,
                "object": "chat.completion",
                "created": created,
                "model": chat.model,
                "system_fingerprint": "fp_callaudit_sim",
                "service_tier": "default",
                "choices": [{ "index": 0, "message": message, "logprobs": Value::Null, "finish_reason": finish }],
                "usage": usage,
            }),
        )
    }
}

/// Splits a text into `n` roughly equal pieces on character boundaries.
fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(n.max(1));
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// The answer as Server-Sent Events (`data: <chunk>` frames, then `data: [DONE]`),
/// `stream_interval_ms` apart. With `stream_break_rate`, the connection may break after
/// about half of the content: no finish reason, no usage, no `[DONE]`.
fn stream_response(
    state: &SimState,
    id: &str,
    created: i64,
    chat: &ChatReq,
    outcome: Outcome,
    usage: Value,
) -> Response {
    let cfg = state.config();
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": chat.model,
            "system_fingerprint": "fp_callaudit_sim",
            "choices": [{ "index": 0, "delta": delta, "logprobs": Value::Null, "finish_reason": finish }],
        })
    };
    let mut chunks: Vec<Value> = Vec::new();
    // Where the stream breaks when it does: after the role chunk and half the content.
    let mut break_after = 1;
    let finish = match outcome {
        Outcome::ToolCalls(calls) => {
            chunks.push(chunk(
                json!({ "role": "assistant", "content": Value::Null, "refusal": Value::Null }),
                Value::Null,
            ));
            for (i, c) in calls.iter().enumerate() {
                let mut head = tool_call_json(i, c);
                head["function"]["arguments"] = json!("");
                chunks.push(chunk(json!({ "tool_calls": [head] }), Value::Null));
                for p in pieces(&c.2, 2) {
                    chunks.push(chunk(
                        json!({ "tool_calls": [{ "index": i, "function": { "arguments": p } }] }),
                        Value::Null,
                    ));
                }
            }
            "tool_calls"
        }
        Outcome::Content { text, finish } => {
            chunks.push(chunk(
                json!({ "role": "assistant", "content": "", "refusal": Value::Null }),
                Value::Null,
            ));
            let content = pieces(&text, 5);
            break_after += content.len().div_ceil(2);
            for p in content {
                chunks.push(chunk(json!({ "content": p }), Value::Null));
            }
            finish
        }
        Outcome::Refusal(r) => {
            chunks.push(chunk(
                json!({ "role": "assistant", "content": Value::Null, "refusal": "" }),
                Value::Null,
            ));
            for p in pieces(&r, 3) {
                chunks.push(chunk(json!({ "refusal": p }), Value::Null));
            }
            "stop"
        }
    };
    chunks.push(chunk(json!({}), json!(finish)));
    if chat.include_usage {
        chunks.push(json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": chat.model,
            "system_fingerprint": "fp_callaudit_sim", "choices": [], "usage": usage,
        }));
    }
    let mut frames: Vec<Result<String, std::io::Error>> = chunks
        .into_iter()
        .map(|c| Ok(format!("data: {c}\n\n")))
        .collect();
    frames.push(Ok("data: [DONE]\n\n".to_owned()));
    if cfg.stream_break_rate > 0.0 && state.roll() < cfg.stream_break_rate {
        frames.truncate(break_after);
        frames.push(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated broken stream",
        )));
    }
    let interval = std::time::Duration::from_millis(cfg.stream_interval_ms);
    let body = stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| async move {
        if i > 0 && !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
        frame
    });
    Response::builder()
        .status(StatusCode::OK)
        .content_type("text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_bytes_stream(body))
}

/// `GET /openai/v1/models`
#[handler]
pub(crate) async fn list_models(req: &Request, Data(state): Data<&Arc<SimState>>) -> Response {
    state.delay().await;
    if let Some(r) = check_key(state, req) {
        return r;
    }
    let data: Vec<Value> = ["gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini"]
        .iter()
        .map(|m| json!({ "id": m, "object": "model", "created": 1_700_000_000, "owned_by": "callaudit-sim" }))
        .collect();
    json_response(StatusCode::OK, &json!({ "object": "list", "data": data }))
}
