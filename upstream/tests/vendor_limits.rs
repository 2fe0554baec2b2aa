//! What the vendor clients refuse to do: follow a redirect (it would carry our key to the
//! host it names) or read an answer of unbounded size.

use callaudit_domain::secret::Secret;
use callaudit_upstream::crm::CrmClient;
use callaudit_upstream::elevenlabs::ElevenLabsClient;
use callaudit_upstream::openai::OpenAiClient;
use callaudit_upstream::openai::chat::JsonRequest;
use callaudit_upstream::{MAX_ANSWER_BYTES, UpstreamError};
use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener};
use poem::{Endpoint, Request, Response, Route};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Serves `ep` on an ephemeral port.
async fn serve(ep: impl Endpoint + 'static) -> SocketAddr {
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(ep));
    addr
}

fn permanent_message(e: UpstreamError) -> String {
    match e {
        UpstreamError::Permanent { message, .. } => message,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_redirect_is_never_followed_so_the_key_never_reaches_the_host_it_names() {
    // The host a redirect names records every request it gets, with its headers.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let elsewhere = serve(Route::new().at(
        "/*path",
        poem::endpoint::make_sync(move |req: Request| {
            log.lock()
                .unwrap()
                .push(format!("{} {:?}", req.uri(), req.headers()));
            "{}"
        }),
    ))
    .await;
    let redirecting = serve(Route::new().at(
        "/*path",
        poem::endpoint::make_sync(move |_req: Request| {
            Response::builder()
                .status(StatusCode::FOUND)
                .header("location", format!("http://{elsewhere}/steal"))
                .finish()
        }),
    ))
    .await;
    let base = format!("http://{redirecting}");
    let t = Duration::from_secs(10);

    let crm = CrmClient::new(&base, Secret::normalized("crm-key-1"), t);
    let e = crm.fiche_details("FICHE-1").await.expect_err("no redirect");
    assert!(permanent_message(e).contains("HTTP 302"));
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    assert!(crm.sales_with_calls(day).await.is_err());

    let stt = ElevenLabsClient::new(&base, Secret::normalized("xi-key-2"), "scribe_v1", t);
    let e = stt
        .transcribe("REC-1", "http://audio.example/rec.mp3")
        .await
        .expect_err("no redirect");
    assert!(permanent_message(e).contains("HTTP 302"));

    let llm = OpenAiClient::new(&base, Secret::normalized("sk-key-3"), t);
    let schema = serde_json::json!({"type": "object"});
    let e = llm
        .json_completion(JsonRequest {
            model: "m",
            system: "s",
            user: "u",
            schema_name: "x",
            schema: &schema,
        })
        .await
        .expect_err("no redirect");
    assert!(permanent_message(e).contains("HTTP 302"));

    assert!(
        seen.lock().unwrap().is_empty(),
        "a client followed a redirect: {:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test]
async fn an_answer_past_the_cap_is_refused_whether_its_length_is_declared_or_streamed() {
    const CHUNK: usize = 1 << 20;
    let chunks = MAX_ANSWER_BYTES / CHUNK + 1;
    let streamed = serve(Route::new().at(
        "/*path",
        poem::endpoint::make_sync(move |_req: Request| {
            let body = futures::stream::iter(
                (0..chunks).map(|_| Ok::<_, std::io::Error>(vec![b' '; CHUNK])),
            );
            Response::builder()
                .content_type("application/json")
                .body(poem::Body::from_bytes_stream(body))
        }),
    ))
    .await;
    let declared = serve(Route::new().at(
        "/*path",
        poem::endpoint::make_sync(move |_req: Request| {
            Response::builder()
                .content_type("application/json")
                .body(vec![b' '; MAX_ANSWER_BYTES + 1])
        }),
    ))
    .await;
    for addr in [streamed, declared] {
        let crm = CrmClient::new(
            &format!("http://{addr}"),
            Secret::normalized("k"),
            Duration::from_secs(30),
        );
        let e = crm.fiche_details("FICHE-1").await.expect_err("too large");
        assert!(
            permanent_message(e).contains("larger than"),
            "answer of {addr} was read"
        );
    }
}
