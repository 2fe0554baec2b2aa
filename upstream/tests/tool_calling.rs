//! `OpenAiClient::tools_completion` over HTTP: the message flow of OpenAI tool calling, its
//! bounds and error classification against a scripted server, then the whole
//! transcript-tools conversation against the LLM simulator.

use callaudit_domain::analysis::{
    ControlPointStatus, STEP_ANALYSIS_SCHEMA_NAME, StepAnalysis, step_analysis_json_schema,
};
use callaudit_domain::audit_config::AuditConfigSpec;
use callaudit_domain::evidence::{CitationVerdict, GatingOptions, gate_step};
use callaudit_domain::prompts::{step_prompt, step_tools_prompt};
use callaudit_domain::secret::Secret;
use callaudit_domain::transcript::{Transcript, Word};
use callaudit_domain::transcript_tools::{TranscriptTools, tool_definitions};
use callaudit_upstream::UpstreamError;
use callaudit_upstream::openai::chat::JsonRequest;
use callaudit_upstream::openai::{
    OpenAiClient, ToolCompletion, ToolLoopLimits, ToolsRequest, Usage,
};
use poem::web::{Data, Json};
use poem::{EndpointExt, Response, Route, handler, post};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "sk-test-secret-123";

type Reply = Box<dyn Fn(usize, &Value) -> (u16, Value) + Send + Sync>;

/// A chat completions endpoint answering with `reply(request number, request)` and
/// keeping every request.
struct Script {
    requests: Mutex<Vec<Value>>,
    reply: Reply,
}

impl Script {
    fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

#[handler]
fn completions(Data(script): Data<&Arc<Script>>, Json(body): Json<Value>) -> Response {
    let n = {
        let mut r = script.requests.lock().unwrap();
        r.push(body.clone());
        r.len() - 1
    };
    let (status, answer) = (script.reply)(n, &body);
    Response::builder()
        .status(poem::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(answer.to_string())
}

async fn scripted(
    reply: impl Fn(usize, &Value) -> (u16, Value) + Send + Sync + 'static,
) -> (OpenAiClient, Arc<Script>) {
    use poem::listener::{Acceptor, Listener};
    let script = Arc::new(Script {
        requests: Mutex::new(Vec::new()),
        reply: Box::new(reply),
    });
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let app = Route::new()
        .at("/v1/chat/completions", post(completions))
        .data(script.clone());
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    let client = OpenAiClient::new(
        &format!("http://{addr}/v1"),
        Secret::normalized(KEY),
        Duration::from_secs(10),
    );
    (client, script)
}

fn with_calls(calls: &[(&str, &str, Value)], usage: (i64, i64)) -> Value {
    json!({
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null, "refusal": null, "annotations": [],
            "tool_calls": calls.iter().map(|(id, name, args)| json!({
                "id": id, "type": "function",
                "function": {"name": name, "arguments": args.to_string()},
            })).collect::<Vec<_>>(),
        }}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1},
    })
}

fn with_content(content: &str, usage: (i64, i64)) -> Value {
    json!({
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": content, "refusal": null,
        }}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1},
    })
}

const FINAL: &str = r#"{"points_controle":[],"commentaire":"ok"}"#;

async fn converse(
    client: &OpenAiClient,
    limits: ToolLoopLimits,
    run_tool: impl FnMut(&str, &str) -> Value,
) -> Result<ToolCompletion, UpstreamError> {
    client
        .tools_completion(
            ToolsRequest {
                model: "gpt-test",
                system: "system",
                user: "user",
                tools: &tool_definitions(),
                schema_name: STEP_ANALYSIS_SCHEMA_NAME,
                schema: &step_analysis_json_schema(),
                limits,
            },
            run_tool,
        )
        .await
}

#[tokio::test]
async fn every_tool_call_is_answered_by_id_and_the_final_answer_is_parsed_with_summed_usage() {
    let (client, script) = scripted(|n, _| match n {
        0 => (
            200,
            with_calls(
                &[
                    ("call_1", "searchTranscript", json!({"query": "prix"})),
                    (
                        "call_2",
                        "getTranscriptChunks",
                        json!({"recording_id": "R"}),
                    ),
                ],
                (100, 10),
            ),
        ),
        _ => (200, with_content(FINAL, (300, 20))),
    })
    .await;
    let mut seen = Vec::new();
    let done = converse(&client, ToolLoopLimits::default(), |name, args| {
        seen.push((name.to_string(), args.to_string()));
        json!({"matches": [], "for": name})
    })
    .await
    .expect("completion");
    assert_eq!(
        done.answer,
        json!({"points_controle": [], "commentaire": "ok"})
    );
    assert_eq!(
        done.usage,
        Usage {
            prompt_tokens: 400,
            completion_tokens: 30
        }
    );
    assert_eq!(
        (done.requests, done.tool_rounds, done.tool_calls),
        (2, 1, 2)
    );
    assert!(!done.budget_exhausted);
    assert_eq!(
        seen[0],
        ("searchTranscript".into(), r#"{"query":"prix"}"#.into())
    );
    assert_eq!(seen[1].0, "getTranscriptChunks");

    let requests = script.requests();
    let first = &requests[0];
    assert_eq!(first["tool_choice"], "auto");
    assert_eq!(first["tools"], tool_definitions());
    assert_eq!(
        first["response_format"]["json_schema"]["name"],
        STEP_ANALYSIS_SCHEMA_NAME
    );
    assert_eq!(first["response_format"]["json_schema"]["strict"], true);
    let messages = requests[1]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 5);
    assert_eq!(messages[2]["role"], "assistant");
    assert!(messages[2]["content"].is_null());
    assert_eq!(messages[2]["tool_calls"][1]["id"], "call_2");
    assert_eq!(
        messages[2]["tool_calls"][0]["function"]["arguments"],
        r#"{"query":"prix"}"#
    );
    for (i, id) in [(3, "call_1"), (4, "call_2")] {
        assert_eq!(messages[i]["role"], "tool");
        assert_eq!(messages[i]["tool_call_id"], id);
    }
    let result: Value = serde_json::from_str(messages[4]["content"].as_str().unwrap()).unwrap();
    assert_eq!(result["for"], "getTranscriptChunks");
    assert_eq!(
        done.tool_chars,
        messages[3]["content"].as_str().unwrap().chars().count()
            + messages[4]["content"].as_str().unwrap().chars().count()
    );
}

#[tokio::test]
async fn after_the_last_allowed_round_the_model_is_told_and_the_final_answer_forced() {
    let (client, script) = scripted(|n, req| {
        if req["tool_choice"] == "none" {
            (200, with_content(FINAL, (1, 1)))
        } else {
            let id = format!("call_{n}");
            (
                200,
                with_calls(&[(&id, "searchTranscript", json!({"query": "x"}))], (1, 1)),
            )
        }
    })
    .await;
    let limits = ToolLoopLimits {
        max_tool_rounds: 3,
        max_tool_chars: 60_000,
    };
    let done = converse(&client, limits, |_, _| json!({"matches": []}))
        .await
        .expect("completion");
    assert_eq!(
        (done.requests, done.tool_rounds, done.tool_calls),
        (4, 3, 3)
    );
    assert!(done.budget_exhausted);
    let requests = script.requests();
    let choices: Vec<&str> = requests
        .iter()
        .map(|r| r["tool_choice"].as_str().unwrap())
        .collect();
    assert_eq!(choices, vec!["auto", "auto", "auto", "none"]);
    // The tools stay declared: the history holds tool calls.
    assert_eq!(requests[3]["tools"], tool_definitions());
    let last = requests[3]["messages"].as_array().unwrap().last().unwrap();
    let result: Value = serde_json::from_str(last["content"].as_str().unwrap()).unwrap();
    assert!(result["notice"].as_str().unwrap().contains("exhausted"));
    // Earlier results carry no notice.
    let earlier = &requests[1]["messages"].as_array().unwrap()[3];
    assert!(!earlier["content"].as_str().unwrap().contains("notice"));
}

#[tokio::test]
async fn a_result_past_the_text_budget_is_withheld_and_the_final_answer_forced() {
    let (client, script) = scripted(|_, req| {
        if req["tool_choice"] == "none" {
            (200, with_content(FINAL, (1, 1)))
        } else {
            (
                200,
                with_calls(
                    &[
                        ("call_a", "searchTranscript", json!({"query": "a"})),
                        ("call_b", "searchTranscript", json!({"query": "b"})),
                        ("call_c", "searchTranscript", json!({"query": "c"})),
                    ],
                    (1, 1),
                ),
            )
        }
    })
    .await;
    let limits = ToolLoopLimits {
        max_tool_rounds: 8,
        max_tool_chars: 1_500,
    };
    let done = converse(&client, limits, |_, _| json!({"text": "x".repeat(1_000)}))
        .await
        .expect("completion");
    assert!(done.budget_exhausted);
    assert_eq!(done.tool_calls, 1);
    assert!(done.tool_chars <= 1_500 && done.tool_chars > 1_000);
    let requests = script.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1]["tool_choice"], "none");
    let messages = requests[1]["messages"].as_array().unwrap();
    // Every call still gets its tool message (the protocol requires it).
    let tool_ids: Vec<&str> = messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["tool_call_id"].as_str().unwrap())
        .collect();
    assert_eq!(tool_ids, vec!["call_a", "call_b", "call_c"]);
    for m in &messages[4..] {
        assert!(m["content"].as_str().unwrap().contains("budget exhausted"));
    }
}

#[tokio::test]
async fn a_model_that_calls_tools_after_tool_choice_none_is_a_retryable_failure() {
    let (client, _) = scripted(|n, _| {
        let id = format!("call_{n}");
        (
            200,
            with_calls(&[(&id, "searchTranscript", json!({"query": "x"}))], (1, 1)),
        )
    })
    .await;
    let limits = ToolLoopLimits {
        max_tool_rounds: 1,
        max_tool_chars: 60_000,
    };
    let err = converse(&client, limits, |_, _| json!({"matches": []}))
        .await
        .expect_err("no final answer");
    assert!(matches!(err, UpstreamError::Transient { .. }), "{err}");
    assert!(err.is_retryable());
}

type Expect = fn(&UpstreamError) -> bool;

#[tokio::test]
async fn failures_in_a_later_round_are_classified_and_never_carry_the_key() {
    let cases: Vec<(u16, Value, Expect)> = vec![
        (
            200,
            json!({"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": null, "refusal": format!("Je ne peux pas ({KEY}).")}}]}),
            |e| matches!(e, UpstreamError::Permanent { .. }),
        ),
        (
            200,
            json!({"choices": [{"finish_reason": "length", "message": {"role": "assistant", "content": "{\"points"}}]}),
            |e| matches!(e, UpstreamError::Transient { .. }),
        ),
        (200, with_content("not json", (1, 1)), |e| {
            matches!(e, UpstreamError::Transient { .. })
        }),
        (
            429,
            json!({"error": {"message": "Rate limit reached"}}),
            |e| matches!(e, UpstreamError::RateLimited { .. }),
        ),
        (500, json!({"error": {"message": "server error"}}), |e| {
            matches!(e, UpstreamError::Transient { .. })
        }),
        (
            401,
            json!({"error": {"message": format!("Incorrect API key provided: {KEY}.")}}),
            |e| matches!(e, UpstreamError::Permanent { .. }),
        ),
    ];
    for (status, second, expected) in cases {
        let (client, _) = scripted(move |n, _| match n {
            0 => (
                200,
                with_calls(
                    &[("call_1", "searchTranscript", json!({"query": "x"}))],
                    (1, 1),
                ),
            ),
            _ => (status, second.clone()),
        })
        .await;
        let err = converse(&client, ToolLoopLimits::default(), |_, _| json!({}))
            .await
            .expect_err("failure");
        assert!(expected(&err), "{status}: {err}");
        assert!(!err.to_string().contains(KEY), "{err}");
        assert!(!format!("{err:?}").contains(KEY), "{err:?}");
    }
}

/// Transcripts of a simulator fiche, words spread evenly over each utterance.
fn sim_transcripts(fiche_id: &str) -> Vec<Transcript> {
    let fiche = callaudit_sim::dataset().fiche(fiche_id).expect("fiche");
    fiche
        .recordings
        .iter()
        .map(|r| {
            let mut words = Vec::new();
            for u in &r.utterances {
                let ws: Vec<&str> = u.text.split_whitespace().collect();
                let step = (u.end_s - u.start_s) / ws.len().max(1) as f64;
                for (i, w) in ws.iter().enumerate() {
                    let start = u.start_s + step * i as f64;
                    words.push(Word {
                        text: w.to_string(),
                        start_s: start,
                        end_s: start + step,
                        speaker: Some(u.speaker.clone()),
                    });
                }
            }
            Transcript {
                recording_id: r.recording_id.clone(),
                language: Some("fr".into()),
                text: r.text(),
                words,
            }
        })
        .collect()
}

fn statuses(a: &StepAnalysis) -> Vec<(usize, ControlPointStatus)> {
    a.points_controle
        .iter()
        .map(|p| (p.index, p.statut))
        .collect()
}

#[tokio::test]
async fn against_the_simulator_tools_mode_reaches_the_prompt_mode_verdicts_with_verified_quotes() {
    let state = callaudit_sim::SimState::new(Default::default());
    let (addr, _) = callaudit_sim::spawn("127.0.0.1:0", state.clone())
        .await
        .expect("sim");
    let client = OpenAiClient::new(
        &format!("http://{addr}/openai/v1"),
        Secret::normalized("sim-llm"),
        Duration::from_secs(10),
    );
    let config: AuditConfigSpec =
        serde_json::from_str(callaudit_sim::SAMPLE_AUDIT_CONFIG_JSON).expect("config");
    let schema = step_analysis_json_schema();
    let mut present = 0;
    for fiche in callaudit_sim::dataset().fiche_ids() {
        let transcripts = sim_transcripts(fiche);
        let tools = TranscriptTools::new(&transcripts);
        for step in &config.steps {
            let (system, user) = step_prompt(step, &transcripts);
            let (answer, _) = client
                .json_completion(JsonRequest {
                    model: "m",
                    system: &system,
                    user: &user,
                    schema_name: STEP_ANALYSIS_SCHEMA_NAME,
                    schema: &schema,
                })
                .await
                .expect("prompt mode");
            let prompt: StepAnalysis = serde_json::from_value(answer).expect("schema");
            let prompt = gate_step(prompt, &transcripts, &GatingOptions::default());

            let before = state.stats();
            let limits = ToolLoopLimits::default();
            let (system, user) = step_tools_prompt(step, &tools, limits);
            assert!(
                !user.contains("\"utterances\""),
                "no transcript in the prompt"
            );
            let done = client
                .tools_completion(
                    ToolsRequest {
                        model: "m",
                        system: &system,
                        user: &user,
                        tools: &tool_definitions(),
                        schema_name: STEP_ANALYSIS_SCHEMA_NAME,
                        schema: &schema,
                        limits,
                    },
                    |name, args| tools.call(name, args),
                )
                .await
                .expect("tools mode");
            let after = state.stats();
            assert!(done.tool_rounds >= 1 && !done.budget_exhausted);
            assert_eq!(
                u64::from(done.tool_calls),
                after.llm_tool_calls - before.llm_tool_calls
            );
            assert_eq!(
                after.llm_tool_results - before.llm_tool_results,
                after.llm_tool_calls - before.llm_tool_calls
            );
            let tools_mode: StepAnalysis = serde_json::from_value(done.answer).expect("schema");
            let tools_mode = gate_step(tools_mode, &transcripts, &GatingOptions::default());
            assert_eq!(
                statuses(&tools_mode),
                statuses(&prompt),
                "{fiche} step {}",
                step.position
            );
            for p in &tools_mode.points_controle {
                if p.statut == ControlPointStatus::Present {
                    present += 1;
                    assert!(
                        p.citation_checks
                            .iter()
                            .any(|c| c.verdict == CitationVerdict::Verified)
                    );
                }
                assert!(!p.evidence_unverified, "{fiche}: {p:?}");
            }
        }
    }
    assert!(present > 10, "{present}");
}
