//! Chat about an audit or a fiche end to end: an api with the chat's LLM pointed at the
//! simulator, answers streamed as SSE, stored with their questions, the prompt seen by
//! the simulated LLM (`/_sim/llm/requests`), quotes checked against real transcripts
//! (recorded by a worker through Temporal), broken streams, permissions and bad input.

use crate::audit_pipeline::Scenario;
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The model the test api asks for chat answers.
const CHAT_MODEL: &str = "gpt-chat-test";

/// What the simulator answers about FICHE-1001 when none of its recordings is
/// transcribed yet and the question names the right of withdrawal (« droit de
/// rétractation »): the fiche, the topic, no passage to quote.
const UNTRANSCRIBED_ANSWER: &str = "D'après les éléments de la fiche FICHE-1001 dont je \
    dispose, au sujet de droit, rétractation, voici ce que l'on entend dans l'appel. Je n'ai \
    trouvé aucun passage de la transcription à citer à ce sujet.";

const RETRACTATION: &str = "Le droit de rétractation a-t-il été annoncé ?";

/// A scenario (database, simulators, a worker's task queue, tokens) and an api on the same
/// database whose chat streams from the simulated LLM.
struct ChatScenario {
    sc: Scenario,
    api: TestApi,
}

impl ChatScenario {
    async fn new(label: &str, sim: callaudit_sim::SimConfig) -> ChatScenario {
        let sc = Scenario::new(label, sim).await;
        let mut settings = api_settings(
            &sc.db.url,
            temporal_settings(&temporal_address(), &sc.queue),
            Some(format!("http://{}/crm", sc.sim)),
            3,
        );
        settings.chat = Some(callaudit_api::state::ChatLlm {
            client: callaudit_upstream::openai::OpenAiClient::new(
                &format!("http://{}/openai/v1", sc.sim),
                callaudit_domain::secret::Secret::normalized("sim-llm"),
                Duration::from_secs(30),
            ),
            model: CHAT_MODEL.into(),
            pii_redaction: callaudit_domain::personal_data::PiiRedaction::Prompts,
        });
        let api = spawn_api_from(settings).await;
        ChatScenario { sc, api }
    }

    /// Posts `message` to `path` as `token`; reads the answer's stream to its end.
    async fn ask_as(&self, token: &str, path: &str, message: &str) -> Answer {
        ask(&self.api, token, path, &json!({ "message": message })).await
    }

    async fn ask(&self, path: &str, message: &str) -> Answer {
        self.ask_as(&self.sc.auditor, path, message).await
    }

    async fn history(&self, path: &str) -> Value {
        let (status, page) = self.api.get(path, Some(&self.sc.auditor)).await;
        assert_eq!(status, 200, "{page}");
        page
    }

    /// The bodies of the chat completion requests the simulated LLM received.
    async fn llm_requests(&self) -> Vec<Value> {
        let v: Value = reqwest::get(format!("http://{}/_sim/llm/requests", self.sc.sim))
            .await
            .expect("requests")
            .json()
            .await
            .expect("json");
        v["requests"].as_array().expect("requests").clone()
    }

    async fn reset_sim_stats(&self) {
        reqwest::Client::new()
            .post(format!("http://{}/_sim/reset-stats", self.sc.sim))
            .send()
            .await
            .expect("reset");
    }

    async fn set_sim(&self, config: Value) {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/_sim/config", self.sc.sim))
            .json(&config)
            .send()
            .await
            .expect("config");
        assert_eq!(resp.status(), 200);
    }
}

/// One answer's stream: each event with the number of the network read that completed
/// it (1, 2, …), or the error of a refused request.
struct Answer {
    status: u16,
    events: Vec<(usize, SseEvent)>,
    error: Value,
}

impl Answer {
    fn kinds(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|(_, e)| e.event.as_deref())
            .collect()
    }

    fn data(&self, kind: &str) -> Vec<Value> {
        self.events
            .iter()
            .filter(|(_, e)| e.event.as_deref() == Some(kind))
            .map(|(_, e)| serde_json::from_str(&e.data).expect("json data"))
            .collect()
    }

    fn text(&self) -> String {
        self.data("chat.delta")
            .iter()
            .map(|d| d["text"].as_str().expect("text").to_string())
            .collect()
    }

    /// The `message` of the last event (the stored answer).
    fn answer(&self) -> Value {
        let (_, last) = self.events.last().expect("events");
        let v: Value = serde_json::from_str(&last.data).expect("json");
        v["message"].clone()
    }
}

async fn ask(api: &TestApi, token: &str, path: &str, body: &Value) -> Answer {
    let resp = api
        .http
        .post(format!("{}{path}", api.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("chat request");
    let status = resp.status().as_u16();
    if status != 200 {
        return Answer {
            status,
            events: vec![],
            error: resp.json().await.unwrap_or(Value::Null),
        };
    }
    read_to_end(resp, status).await
}

async fn read_to_end(mut resp: reqwest::Response, status: u16) -> Answer {
    let mut decoder = callaudit_api::sse::SseDecoder::default();
    let mut events = Vec::new();
    let mut reads = 0;
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(60), resp.chunk())
            .await
            .expect("the answer's stream moves within 60 s")
            .expect("the answer's stream");
        let Some(bytes) = chunk else {
            return Answer {
                status,
                events,
                error: Value::Null,
            };
        };
        reads += 1;
        events.extend(decoder.push(&bytes).into_iter().map(|e| (reads, e)));
    }
}

/// Runs a one-step audit of FICHE-1001 with a worker (which transcribes both recordings);
/// returns the completed audit.
async fn audited_fiche_1001(cs: &ChatScenario) -> Value {
    let _worker = cs.sc.worker(&[]);
    let config = cs.sc.config(1).await;
    let id = cs.sc.run("FICHE-1001", &config).await;
    cs.sc.completed(&id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_streams_in_several_sse_frames_and_is_stored_with_its_question() {
    let cs = ChatScenario::new(
        "chat_stream",
        callaudit_sim::SimConfig {
            stream_interval_ms: 40,
            ..Default::default()
        },
    )
    .await;
    let answer = cs.ask("/api/fiches/FICHE-1001/chat", RETRACTATION).await;
    assert_eq!(answer.status, 200, "{}", answer.error);
    assert_eq!(
        answer.kinds(),
        [
            "chat.started",
            "chat.delta",
            "chat.delta",
            "chat.delta",
            "chat.delta",
            "chat.delta",
            "chat.completed"
        ]
    );
    // The pieces came as the model wrote them: in several network reads, not one.
    let delta_reads: std::collections::BTreeSet<usize> = answer
        .events
        .iter()
        .filter(|(_, e)| e.event.as_deref() == Some("chat.delta"))
        .map(|(read, _)| *read)
        .collect();
    assert!(delta_reads.len() >= 2, "deltas in reads {delta_reads:?}");
    assert_eq!(answer.text(), UNTRANSCRIBED_ANSWER);
    let started = &answer.data("chat.started")[0];
    assert_eq!(started["message"]["role"], "user");
    assert_eq!(started["message"]["content"], RETRACTATION);
    let stored = answer.answer();
    assert_eq!(stored["role"], "assistant");
    assert_eq!(stored["status"], "complete");
    assert_eq!(stored["content"], UNTRANSCRIBED_ANSWER);
    assert_eq!(stored["model"], CHAT_MODEL);
    assert_eq!(stored["quotes"], json!([]));
    assert!(stored["usage"]["prompt_tokens"].as_i64().unwrap() > 0);
    assert!(stored["usage"]["completion_tokens"].as_i64().unwrap() > 0);

    let history = cs.history("/api/fiches/FICHE-1001/chat/history").await;
    assert_eq!(history["total"], 2);
    assert_eq!(history["conversation_id"], started["conversation_id"]);
    let items = history["items"].as_array().unwrap();
    assert_eq!(items[0], started["message"]);
    assert_eq!(items[1], stored);

    // The call and its tokens are in the api's metrics, under the chat model.
    let metrics = cs
        .api
        .http
        .get(format!("{}/metrics", cs.api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        format!(
            r#"callaudit_llm_tokens_total{{kind="completion",model="{CHAT_MODEL}"}} {}"#,
            stored["usage"]["completion_tokens"]
        ),
        r#"callaudit_vendor_call_duration_seconds_count{operation="chat_completion_stream",outcome="ok",vendor="openai"} 1"#.to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_of_sixty_messages_sends_exactly_the_last_fifty_oldest_first() {
    let cs = ChatScenario::new("chat_window", Default::default()).await;
    let path = "/api/fiches/FICHE-1001/chat";
    for i in 1..=30 {
        let answer = cs.ask(path, &format!("Question {i}")).await;
        assert_eq!(answer.answer()["status"], "complete", "question {i}");
    }
    let history = cs
        .history("/api/fiches/FICHE-1001/chat/history?limit=200")
        .await;
    assert_eq!(history["total"], 60);
    let stored = history["items"].as_array().unwrap().clone();

    cs.reset_sim_stats().await;
    cs.ask(path, "Question 31").await;
    let requests = cs.llm_requests().await;
    assert_eq!(requests.len(), 1);
    let sent = requests[0]["messages"].as_array().unwrap();
    // The context, the stored messages 11 to 60 (question 6 to answer 30), the question.
    assert_eq!(sent.len(), 52);
    assert_eq!(sent[0]["role"], "system");
    assert!(
        sent[0]["content"]
            .as_str()
            .unwrap()
            .contains("Fiche FICHE-1001 : 0 enregistrement(s) transcrit(s).")
    );
    assert_eq!(sent[1], json!({"role": "user", "content": "Question 6"}));
    assert_eq!(sent[2]["role"], "assistant");
    assert_eq!(sent[49], json!({"role": "user", "content": "Question 30"}));
    assert_eq!(sent[50]["role"], "assistant");
    assert_eq!(sent[51], json!({"role": "user", "content": "Question 31"}));
    for (n, message) in sent[1..51].iter().enumerate() {
        let row = &stored[10 + n];
        assert_eq!(message["role"], row["role"], "message {}", 11 + n);
        assert_eq!(message["content"], row["content"], "message {}", 11 + n);
    }
    assert_eq!(requests[0]["model"], CHAT_MODEL);
    assert_eq!(requests[0]["stream"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_pages_the_whole_conversation_oldest_first_and_is_each_users_own() {
    let cs = ChatScenario::new("chat_history", Default::default()).await;
    let path = "/api/fiches/FICHE-1001/chat";
    for q in ["Première question ?", "Deuxième question ?", "Troisième ?"] {
        cs.ask(path, q).await;
    }
    let first = cs
        .history("/api/fiches/FICHE-1001/chat/history?limit=4")
        .await;
    assert_eq!(
        (first["total"].clone(), first["limit"].clone()),
        (json!(6), json!(4))
    );
    let items = first["items"].as_array().unwrap();
    let roles: Vec<&str> = items.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(items[0]["content"], "Première question ?");
    assert_eq!(items[2]["content"], "Deuxième question ?");
    let ids: Vec<i64> = items.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let rest = cs
        .history("/api/fiches/FICHE-1001/chat/history?limit=4&offset=4")
        .await;
    let rest = rest["items"].as_array().unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0]["content"], "Troisième ?");
    assert!(rest[0]["id"].as_i64().unwrap() > ids[3]);

    // Another auditor has a conversation of their own: empty so far.
    let other = cs.api.token_for("auditor").await;
    let (status, theirs) = cs
        .api
        .get("/api/fiches/FICHE-1001/chat/history", Some(&other))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        theirs,
        json!({"conversation_id": null, "items": [], "total": 0, "limit": 50, "offset": 0})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fabricated_quote_in_an_answer_is_flagged_while_a_real_one_verifies() {
    let cs = ChatScenario::new("chat_quotes", Default::default()).await;
    let audit = audited_fiche_1001(&cs).await;
    let audit_id = audit["id"].as_str().unwrap();
    cs.set_sim(json!({"fabricate": "Always"})).await;

    // About the fiche: the transcripts are the context.
    let answer = cs.ask("/api/fiches/FICHE-1001/chat", RETRACTATION).await;
    let stored = answer.answer();
    assert_eq!(stored["status"], "complete");
    let quotes = stored["quotes"].as_array().unwrap();
    assert_eq!(quotes.len(), 2, "{stored}");
    assert_eq!(
        quotes[0]["quote"],
        "Je dois aussi vous informer que vous disposez d'un droit de rétractation de quatorze \
         jours à compter de la signature."
    );
    assert_eq!(quotes[0]["verdict"], "VERIFIED");
    assert_eq!(quotes[0]["recording_id"], "REC-1001-2");
    assert_eq!(quotes[1]["quote"], callaudit_sim::FABRICATED_CHAT_QUOTE);
    assert_eq!(quotes[1]["verdict"], "NOT_FOUND");
    assert_eq!(quotes[1]["recording_id"], Value::Null);

    // About the audit: its step, verdicts and citations are the context, and a citation
    // quoted back verifies against the fiche's recordings.
    cs.reset_sim_stats().await;
    let answer = cs
        .ask(
            &format!("/api/audits/{audit_id}/chat"),
            "Comment le conseiller Julien Marchand se présente-t-il ?",
        )
        .await;
    let context = cs.llm_requests().await[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        context.contains(&format!(
            "Audit {audit_id} de la fiche FICHE-1001, configuration « Audit qualité vente — mutuelle santé » : statut completed"
        )),
        "{context}"
    );
    assert!(
        context
            .contains("Étape 1 « Présentation et cadre de l'appel » (poids 10, critique : non) :"),
        "{context}"
    );
    assert!(
        context.contains(
            "  Point 0 « Le conseiller se présente avec son nom et sa société » : PRESENT"
        ),
        "{context}"
    );
    // The simulator quoted the citation of the first control point (its words are in
    // REC-1001-1: « C: Je me présente : Julien Marchand, de la société Horizon Santé. Je
    // vous rappelle… »), then invented one.
    let citation = "Je me présente : Julien Marchand, de la société Horizon Santé.";
    assert!(
        context.contains(&format!(") : « {citation} »")),
        "the audit's citation is in the context:\n{context}"
    );
    let quotes = answer.answer()["quotes"].clone();
    assert_eq!(quotes.as_array().unwrap().len(), 2, "{quotes}");
    assert_eq!(quotes[0]["quote"], citation);
    assert_eq!(quotes[0]["verdict"], "VERIFIED");
    assert_eq!(quotes[0]["recording_id"], "REC-1001-1");
    assert_eq!(quotes[1]["quote"], callaudit_sim::FABRICATED_CHAT_QUOTE);
    assert_eq!(quotes[1]["verdict"], "NOT_FOUND");
    assert_eq!(quotes[1]["recording_id"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_broken_by_the_llm_leaves_the_question_and_a_partial_answer_marked() {
    let cs = ChatScenario::new(
        "chat_broken",
        callaudit_sim::SimConfig {
            stream_break_rate: 1.0,
            ..Default::default()
        },
    )
    .await;
    let answer = cs.ask("/api/fiches/FICHE-1001/chat", RETRACTATION).await;
    assert_eq!(
        answer.kinds(),
        [
            "chat.started",
            "chat.delta",
            "chat.delta",
            "chat.delta",
            "chat.failed"
        ]
    );
    // The simulator broke after 3 of the 5 pieces of the answer (41 characters each).
    let partial = "D'après les éléments de la fiche FICHE-1001 dont je dispose, au sujet de \
                   droit, rétractation, voici ce que l'on entend dans";
    assert_eq!(answer.text(), partial);
    let failed = &answer.data("chat.failed")[0];
    assert!(
        failed["reason"].as_str().unwrap().contains("broke"),
        "{failed}"
    );
    let history = cs.history("/api/fiches/FICHE-1001/chat/history").await;
    assert_eq!(history["total"], 2);
    let items = history["items"].as_array().unwrap();
    assert_eq!(items[0]["content"], RETRACTATION);
    assert_eq!(items[0]["status"], "complete");
    assert_eq!(items[1]["status"], "partial");
    assert_eq!(items[1]["content"], partial);
    assert_eq!(items[1]["error"], failed["reason"]);
    assert_eq!(items[1], failed["message"]);

    // The partial answer is part of the conversation the next question sends.
    cs.set_sim(json!({})).await;
    cs.reset_sim_stats().await;
    let next = cs.ask("/api/fiches/FICHE-1001/chat", "Et ensuite ?").await;
    assert_eq!(next.answer()["status"], "complete");
    let sent = cs.llm_requests().await[0]["messages"].clone();
    assert_eq!(
        sent.as_array().unwrap()[1..],
        [
            json!({"role": "user", "content": RETRACTATION}),
            json!({"role": "assistant", "content": partial}),
            json!({"role": "user", "content": "Et ensuite ?"}),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_that_never_came_is_stored_failed_and_left_out_of_the_next_prompt() {
    let cs = ChatScenario::new("chat_failed", Default::default()).await;
    // The fiche is cached first: the failing LLM below would fail the CRM too.
    let (status, _) = cs
        .api
        .get("/api/fiches/FICHE-1001", Some(&cs.sc.auditor))
        .await;
    assert_eq!(status, 200);
    cs.set_sim(json!({"error_rate": 1.0})).await;
    let answer = cs.ask("/api/fiches/FICHE-1001/chat", "Première ?").await;
    assert_eq!(answer.kinds(), ["chat.started", "chat.failed"]);
    // Three attempts to open the stream (a 5xx before any text is worth retrying).
    assert_eq!(cs.llm_requests().await.len(), 3);
    let stored = answer.answer();
    assert_eq!(stored["status"], "failed");
    assert_eq!(stored["content"], "");
    assert!(
        stored["error"].as_str().unwrap().contains("HTTP 500"),
        "{stored}"
    );
    cs.set_sim(json!({})).await;
    cs.reset_sim_stats().await;
    cs.ask("/api/fiches/FICHE-1001/chat", "Seconde ?").await;
    let sent = cs.llm_requests().await[0]["messages"].clone();
    assert_eq!(
        sent.as_array().unwrap()[1..],
        [
            json!({"role": "user", "content": "Première ?"}),
            json!({"role": "user", "content": "Seconde ?"}),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_mid_answer_still_gets_the_answer_stored() {
    let cs = ChatScenario::new(
        "chat_leave",
        callaudit_sim::SimConfig {
            stream_interval_ms: 150,
            ..Default::default()
        },
    )
    .await;
    let mut resp = cs
        .api
        .http
        .post(format!("{}/api/fiches/FICHE-1001/chat", cs.api.base))
        .bearer_auth(&cs.sc.auditor)
        .json(&json!({"message": RETRACTATION}))
        .send()
        .await
        .unwrap();
    let mut decoder = callaudit_api::sse::SseDecoder::default();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|e: &SseEvent| e.event.as_deref() == Some("chat.delta"))
    {
        let bytes = resp.chunk().await.unwrap().expect("more of the stream");
        seen.extend(decoder.push(&bytes));
    }
    drop(resp);
    let items = wait_for(
        "the answer to be stored after the client left",
        Duration::from_secs(30),
        || async {
            let page = cs.history("/api/fiches/FICHE-1001/chat/history").await;
            (page["total"] == 2).then(|| page["items"].clone())
        },
    )
    .await;
    assert_eq!(items[1]["status"], "complete");
    assert_eq!(items[1]["content"], UNTRANSCRIBED_ANSWER);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_can_read_a_chat_history_but_not_post_to_it() {
    let cs = ChatScenario::new("chat_viewer", Default::default()).await;
    let viewer = cs.api.token_for("viewer").await;
    let answer = cs
        .ask_as(&viewer, "/api/fiches/FICHE-1001/chat", RETRACTATION)
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.error["error"]["code"], "forbidden");
    assert!(
        answer.error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("chat:write"),
        "{}",
        answer.error
    );
    cs.ask("/api/fiches/FICHE-1001/chat", RETRACTATION).await;
    let (status, page) = cs
        .api
        .get("/api/fiches/FICHE-1001/chat/history", Some(&viewer))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 0, "a viewer sees their own conversation");
    assert!(
        cs.llm_requests().await.len() == 1,
        "the viewer's question reached no LLM"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_audit_or_fiche_is_a_404_and_nothing_reaches_the_llm() {
    let cs = ChatScenario::new("chat_unknown", Default::default()).await;
    let unknown = uuid::Uuid::new_v4();
    let answer = cs
        .ask(&format!("/api/audits/{unknown}/chat"), RETRACTATION)
        .await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.error["error"]["message"],
        format!("audit {unknown} not found")
    );
    let (status, _) = cs
        .api
        .get(
            &format!("/api/audits/{unknown}/chat/history"),
            Some(&cs.sc.auditor),
        )
        .await;
    assert_eq!(status, 404);
    let answer = cs.ask("/api/fiches/FICHE-9999/chat", RETRACTATION).await;
    assert_eq!(answer.status, 404, "{}", answer.error);
    let (status, _) = cs
        .api
        .get("/api/fiches/FICHE-9999/chat/history", Some(&cs.sc.auditor))
        .await;
    assert_eq!(status, 404);
    assert!(cs.llm_requests().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_or_overlong_message_is_refused_with_a_clear_error_and_nothing_is_stored() {
    let cs = ChatScenario::new("chat_input", Default::default()).await;
    let path = "/api/fiches/FICHE-1001/chat";
    for (body, status, message) in [
        (json!({"message": ""}), 422, "message must not be empty"),
        (
            json!({"message": " \n\t "}),
            422,
            "message must not be empty",
        ),
        (
            json!({"message": "a".repeat(8_001)}),
            422,
            "message is 8001 characters long; at most 8000 are accepted",
        ),
    ] {
        let answer = ask(&cs.api, &cs.sc.auditor, path, &body).await;
        assert_eq!(answer.status, status);
        assert_eq!(answer.error["error"]["message"], message);
    }
    let answer = ask(&cs.api, &cs.sc.auditor, path, &json!({"question": "oups"})).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error["error"]["code"], "bad_request");
    let answer = ask(
        &cs.api,
        &cs.sc.auditor,
        path,
        &json!({"message": "a".repeat(2 << 20)}),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.error["error"]["code"], "payload_too_large");
    assert!(cs.llm_requests().await.is_empty());
    let stored =
        crate::audit_pipeline::count(&cs.sc.db.url, "SELECT count(*) AS n FROM chat_messages")
            .await;
    assert_eq!(stored, 0);

    // An api without the chat's LLM says so, before storing anything.
    let (status, body) = cs
        .sc
        .api
        .send(
            reqwest::Method::POST,
            path,
            Some(&cs.sc.auditor),
            &json!({"message": RETRACTATION}),
        )
        .await;
    assert_eq!(status, 503);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("OPENAI_API_KEY"),
        "{body}"
    );
}

#[test]
fn the_chat_settings_are_in_api_help_and_the_readme_says_the_api_uses_them() {
    let out = std::process::Command::new(bin())
        .args(["api", "--help"])
        .output()
        .expect("run");
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let top = std::process::Command::new(bin())
        .arg("--help")
        .output()
        .expect("run");
    let top = String::from_utf8_lossy(&top.stdout).to_string();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    for var in [
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_MODEL_CHAT",
        "UPSTREAM_TIMEOUT_MS",
    ] {
        assert!(help.contains(var), "api --help lacks {var}");
        assert!(top.contains(var), "--help lacks {var}");
        let row = readme
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&format!("`{var}`")))
            .unwrap_or_else(|| panic!("README has no row for {var}"));
        let used_by = row.split('|').nth(3).expect("a used-by column");
        assert!(
            used_by.contains("api"),
            "README: {var} is not used by the api: {row}"
        );
    }
}
