//! `OpenAiClient::stream_completion` over HTTP: against the LLM simulator (pieces, usage,
//! metrics, a broken stream, truncation, refusal, error statuses) and against scripted
//! servers (a redirect, a body past its cap, a stream that stops short, an error chunk
//! echoing the key).

use callaudit_domain::chat::{ChatRole, PromptMessage};
use callaudit_domain::secret::Secret;
use callaudit_sim::{ExpectedKeys, SimConfig, SimState};
use callaudit_upstream::UpstreamError;
use callaudit_upstream::metrics::VendorMetrics;
use callaudit_upstream::openai::{CompletionStream, OpenAiClient, StreamRequest};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener};
use poem::{Endpoint, Request, Response, Route};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: &str = "sk-stream-secret-42";

/// A conversation about a fiche whose context has two utterances.
fn conversation() -> Vec<PromptMessage> {
    vec![
        PromptMessage::new(
            ChatRole::System,
            "Fiche FICHE-1001 : 1 enregistrement(s) transcrit(s).\n\
             Enregistrement REC-1001-1 :\n\
             [0.0 s] speaker_0 : Bonjour, je suis Julie de la société Assurup.\n\
             [5.2 s] speaker_0 : Vous bénéficiez d'un droit de rétractation de quatorze jours.\n",
        ),
        PromptMessage::new(
            ChatRole::User,
            "Le droit de rétractation a-t-il été annoncé ?",
        ),
    ]
}

async fn sim(cfg: SimConfig) -> (OpenAiClient, Arc<SimState>) {
    let state = SimState::new(cfg);
    let (addr, _) = callaudit_sim::spawn("127.0.0.1:0", state.clone())
        .await
        .unwrap();
    let client = OpenAiClient::new(
        &format!("http://{addr}/openai/v1"),
        Secret::normalized(KEY),
        Duration::from_secs(10),
    );
    (client, state)
}

/// Every piece until the end, then how it ended.
async fn drain(stream: &mut CompletionStream) -> (Vec<String>, Result<(), UpstreamError>) {
    let mut pieces = Vec::new();
    loop {
        match stream.next_text().await {
            Ok(Some(p)) => pieces.push(p),
            Ok(None) => return (pieces, Ok(())),
            Err(e) => return (pieces, Err(e)),
        }
    }
}

async fn serve(ep: impl Endpoint + 'static) -> SocketAddr {
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(ep));
    addr
}

/// A server answering every request with this event-stream body.
async fn scripted(body: &'static str) -> OpenAiClient {
    let addr = serve(Route::new().at(
        "/*path",
        poem::endpoint::make_sync(move |_req: Request| {
            Response::builder()
                .content_type("text/event-stream")
                .body(body)
        }),
    ))
    .await;
    OpenAiClient::new(
        &format!("http://{addr}"),
        Secret::normalized(KEY),
        Duration::from_secs(10),
    )
}

fn render(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .unwrap();
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn an_answer_arrives_in_several_pieces_that_make_it_whole_with_its_usage_and_metrics() {
    let (client, state) = sim(SimConfig::default()).await;
    let registry = prometheus::Registry::new();
    let client = client.with_metrics(VendorMetrics::register(&registry).unwrap());
    let messages = conversation();
    let mut stream = client
        .stream_completion(StreamRequest::new("gpt-chat", &messages))
        .await
        .expect("stream");
    let (pieces, end) = drain(&mut stream).await;
    end.expect("a complete answer");
    assert_eq!(pieces.len(), 5, "{pieces:?}");
    let answer = pieces.concat();
    assert!(
        answer.contains("« Vous bénéficiez d'un droit de rétractation de quatorze jours. »"),
        "{answer}"
    );
    assert_eq!(stream.finish_reason(), Some("stop"));
    let usage = stream.usage();
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    // What went over the wire: the messages in order, streamed with usage.
    let sent = &state.llm_requests()[0];
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][1]["content"], messages[1].content);
    let text = render(&registry);
    for line in [
        r#"callaudit_vendor_call_duration_seconds_count{operation="chat_completion_stream",outcome="ok",vendor="openai"} 1"#.to_string(),
        format!(r#"callaudit_llm_tokens_total{{kind="prompt",model="gpt-chat"}} {}"#, usage.prompt_tokens),
        format!(r#"callaudit_llm_tokens_total{{kind="completion",model="gpt-chat"}} {}"#, usage.completion_tokens),
    ] {
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
}

#[tokio::test]
async fn a_stream_broken_mid_answer_gives_its_first_pieces_then_a_transient_error() {
    let (client, _) = sim(SimConfig {
        stream_break_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let messages = conversation();
    let mut stream = client
        .stream_completion(StreamRequest::new("m", &messages))
        .await
        .expect("stream");
    let (pieces, end) = drain(&mut stream).await;
    // The simulator breaks after 3 of its 5 pieces.
    assert_eq!(pieces.len(), 3, "{pieces:?}");
    let e = end.expect_err("broken");
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("broke"), "{e}");
    assert_eq!(
        stream.next_text().await.unwrap(),
        None,
        "a stream ends once"
    );
}

#[tokio::test]
async fn a_truncated_answer_keeps_its_text_and_ends_retryable_and_a_refusal_permanent() {
    let (client, state) = sim(SimConfig {
        truncate_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let messages = conversation();
    let mut stream = client
        .stream_completion(StreamRequest::new("m", &messages))
        .await
        .unwrap();
    let (pieces, end) = drain(&mut stream).await;
    assert!(!pieces.is_empty());
    let e = end.expect_err("truncated");
    assert!(
        e.is_retryable() && e.to_string().contains("truncated"),
        "{e}"
    );

    state.set_config(SimConfig {
        refusal_rate: 1.0,
        ..SimConfig::default()
    });
    let mut stream = client
        .stream_completion(StreamRequest::new("m", &messages))
        .await
        .unwrap();
    let (pieces, end) = drain(&mut stream).await;
    assert!(pieces.is_empty());
    let e = end.expect_err("refused");
    assert!(
        !e.is_retryable() && e.to_string().contains("refused"),
        "{e}"
    );
}

#[tokio::test]
async fn error_statuses_are_classified_and_never_carry_the_key() {
    let (client, state) = sim(SimConfig {
        expected_api_keys: Some(ExpectedKeys {
            crm: "c".into(),
            elevenlabs: "e".into(),
            openai: "the-right-key".into(),
        }),
        ..SimConfig::default()
    })
    .await;
    let messages = conversation();
    let e = client
        .stream_completion(StreamRequest::new("m", &messages))
        .await
        .expect_err("wrong key");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("HTTP 401"), "{e}");
    assert!(!format!("{e} {e:?}").contains(KEY), "the key leaked: {e:?}");

    state.set_config(SimConfig {
        error_rate: 1.0,
        ..SimConfig::default()
    });
    let e = client
        .stream_completion(StreamRequest::new("m", &messages))
        .await
        .expect_err("5xx");
    assert_eq!(e.kind(), "transient");
    state.set_config(SimConfig {
        rate_limit_rate: 1.0,
        ..SimConfig::default()
    });
    let e = client
        .stream_completion(StreamRequest::new("m", &messages))
        .await
        .expect_err("429");
    assert!(matches!(
        e,
        UpstreamError::RateLimited {
            retry_after_s: Some(1),
            ..
        }
    ));
}

#[tokio::test]
async fn a_stream_past_its_cap_is_refused_permanently() {
    let (client, _) = sim(SimConfig::default()).await;
    let messages = conversation();
    let mut stream = client
        .stream_completion(StreamRequest {
            max_bytes: 300,
            ..StreamRequest::new("m", &messages)
        })
        .await
        .unwrap();
    let (_, end) = drain(&mut stream).await;
    let e = end.expect_err("too large");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("larger than 300 bytes"), "{e}");
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_the_key_stays_home() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let elsewhere = serve(Route::new().at(
        "/*path",
        poem::endpoint::make_sync(move |req: Request| {
            log.lock().unwrap().push(format!("{:?}", req.headers()));
            ""
        }),
    ))
    .await;
    let redirecting = serve(Route::new().at(
        "/*path",
        poem::endpoint::make_sync(move |_req: Request| {
            Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header("location", format!("http://{elsewhere}/steal"))
                .finish()
        }),
    ))
    .await;
    let client = OpenAiClient::new(
        &format!("http://{redirecting}"),
        Secret::normalized(KEY),
        Duration::from_secs(10),
    );
    let messages = conversation();
    let e = client
        .stream_completion(StreamRequest::new("m", &messages))
        .await
        .expect_err("no redirect");
    assert!(
        !e.is_retryable() && e.to_string().contains("HTTP 307"),
        "{e}"
    );
    assert!(seen.lock().unwrap().is_empty(), "followed: {seen:?}");
}

#[tokio::test]
async fn a_body_that_stops_before_the_model_finished_is_a_broken_stream() {
    let client = scripted(
        "data: {\"choices\":[{\"delta\":{\"content\":\"Le client\"}}]}\n\n\
         data: {\"choices\":[{\"delta\":{\"content\":\" a dit\"}}]}\n\n",
    )
    .await;
    let messages = conversation();
    let mut stream = client
        .stream_completion(StreamRequest::new("m", &messages))
        .await
        .unwrap();
    let (pieces, end) = drain(&mut stream).await;
    assert_eq!(pieces, vec!["Le client", " a dit"]);
    let e = end.expect_err("unfinished");
    assert!(e.is_retryable() && e.to_string().contains("before the model finished"));
}

#[tokio::test]
async fn an_error_sent_inside_the_stream_is_reported_without_the_key() {
    let client = scripted(
        "data: {\"choices\":[{\"delta\":{\"content\":\"Bonjour\"}}]}\n\n\
         data: {\"error\":{\"message\":\"Incorrect API key provided: sk-stream-secret-42\",\"type\":\"invalid_request_error\"}}\n\n",
    )
    .await;
    let messages = conversation();
    let mut stream = client
        .stream_completion(StreamRequest::new("m", &messages))
        .await
        .unwrap();
    let (pieces, end) = drain(&mut stream).await;
    assert_eq!(pieces, vec!["Bonjour"]);
    let e = end.expect_err("an error chunk");
    assert!(!e.is_retryable(), "{e}");
    assert!(e.to_string().contains("Incorrect API key"), "{e}");
    assert!(!format!("{e:?}").contains(KEY), "the key leaked: {e:?}");
}

#[tokio::test]
async fn a_json_answer_to_a_streamed_request_is_refused() {
    let addr = serve(Route::new().at(
        "/*path",
        poem::endpoint::make_sync(|_req: Request| {
            Response::builder()
                .content_type("application/json")
                .body("{\"choices\":[]}")
        }),
    ))
    .await;
    let client = OpenAiClient::new(
        &format!("http://{addr}"),
        Secret::normalized(KEY),
        Duration::from_secs(10),
    );
    let messages = conversation();
    let e = client
        .stream_completion(StreamRequest::new("m", &messages))
        .await
        .expect_err("not a stream");
    assert!(e.to_string().contains("without an event stream"), "{e}");
}
