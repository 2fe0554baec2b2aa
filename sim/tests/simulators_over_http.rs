//! End-to-end tests of the simulators over a real TCP port, with a minimal
//! HTTP/1.1 client (the sim crate has no HTTP client dependency).

use std::{net::SocketAddr, sync::Arc};

use callaudit_sim::{
    ExpectedKeys, Fabricate, SAMPLE_AUDIT_CONFIG_JSON, SimConfig, SimState, SimStats, dataset,
    spawn,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

// ---------------------------------------------------------------- client

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let line = std::str::from_utf8(&data[..pos]).unwrap();
        let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[pos + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
    out
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    let raw = &buf[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(raw) } else { raw.to_vec() };
    Resp {
        status,
        headers,
        body,
    }
}

async fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[], b"").await
}

async fn post_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    request(addr, "POST", path, &h, body.to_string().as_bytes()).await
}

const BOUNDARY: &str = "----callauditSimBoundary7MA4YWxk";

enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a [u8]),
}

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match p {
            Part::Text(name, value) => {
                out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File(name, bytes) => {
                out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"audio.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n")
                        .as_bytes(),
                );
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

async fn stt(addr: SocketAddr, key: Option<&str>, parts: &[Part<'_>]) -> Resp {
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let mut h = vec![("Content-Type", ct.as_str())];
    if let Some(k) = key {
        h.push(("xi-api-key", k));
    }
    request(
        addr,
        "POST",
        "/elevenlabs/v1/speech-to-text",
        &h,
        &multipart(parts),
    )
    .await
}

async fn start(cfg: SimConfig) -> (SocketAddr, Arc<SimState>) {
    let state = SimState::new(cfg);
    let (addr, _handle) = spawn("127.0.0.1:0", state.clone()).await.unwrap();
    (addr, state)
}

async fn stats(addr: SocketAddr) -> SimStats {
    serde_json::from_value(get(addr, "/_sim/stats").await.json()).unwrap()
}

// ---------------------------------------------------------------- helpers for the LLM

fn step(position: usize) -> Value {
    let cfg: Value = serde_json::from_str(SAMPLE_AUDIT_CONFIG_JSON).unwrap();
    cfg["steps"][position - 1].clone()
}

fn control_points(step: &Value) -> Vec<Value> {
    step["control_points"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, p)| json!({ "index": i, "point": p }))
        .collect()
}

fn transcripts(fiche_id: &str) -> Vec<Value> {
    dataset()
        .fiche(fiche_id)
        .unwrap()
        .recordings
        .iter()
        .map(|r| {
            json!({
                "recording_id": r.recording_id,
                "utterances": r.utterances.iter().map(|u| json!({
                    "speaker": u.speaker, "start_s": u.start_s, "end_s": u.end_s, "text": u.text,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn prompt_request(fiche_id: &str, position: usize) -> Value {
    let st = step(position);
    let user = json!({
        "mode": "prompt",
        "step": { "position": position, "name": st["name"], "instructions": st["instructions"] },
        "control_points": control_points(&st),
        "transcripts": transcripts(fiche_id),
    });
    json!({
        "model": "gpt-4.1-mini",
        "messages": [
            { "role": "system", "content": "Tu es un auditeur qualité. Réponds en JSON selon le schéma." },
            { "role": "user", "content": user.to_string() },
        ],
        "response_format": { "type": "json_schema", "json_schema": { "name": "step_result", "strict": true, "schema": { "type": "object" } } },
        "temperature": 0,
    })
}

async fn chat(addr: SocketAddr, body: &Value) -> Resp {
    post_json(addr, "/openai/v1/chat/completions", &[], body).await
}

fn answer(resp: &Resp) -> Value {
    let v = resp.json();
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    serde_json::from_str(content).expect("content is JSON")
}

fn transcript_text(recording_id: &str) -> String {
    dataset().recording(recording_id).unwrap().1.text()
}

// ---------------------------------------------------------------- CRM

#[tokio::test]
async fn fiche_details_list_recordings_with_absolute_urls_built_from_the_host_header() {
    let (addr, _) = start(SimConfig::default()).await;
    let r = get(addr, "/crm/fiches/FICHE-1001").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["fiche_id"], "FICHE-1001");
    assert_eq!(v["groupe"], "NCA");
    assert_eq!(v["client"]["nom"], "Dubois");
    assert_eq!(v["client"]["date_naissance"], "1961-04-12");
    assert_eq!(v["commercial"]["nom"], "Julien Marchand");
    let recs = v["recordings"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["recording_id"], "REC-1001-1");
    assert_eq!(
        recs[0]["url"],
        format!("http://{addr}/crm/recordings/REC-1001-1.mp3")
    );
    assert_eq!(recs[0]["direction"], "outbound");
    assert!(recs[0]["duration_s"].as_f64().unwrap() > 60.0);
    assert!(!v["commentaires"].as_array().unwrap().is_empty());

    let cle1 = v["cle"].as_str().unwrap().to_owned();
    let cle2 = get(addr, "/crm/fiches/FICHE-1001").await.json()["cle"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(cle1, cle2, "the gateway refreshes the key on every request");

    let audio = get(addr, "/crm/recordings/REC-1001-1.mp3").await;
    assert_eq!(audio.status, 200);
    assert_eq!(audio.header("content-type"), Some("audio/mpeg"));
    assert!(audio.body.starts_with(b"SIMREC:REC-1001-1\n"));
}

#[tokio::test]
async fn an_unknown_fiche_or_recording_gets_a_404_json_error() {
    let (addr, _) = start(SimConfig::default()).await;
    let r = get(addr, "/crm/fiches/FICHE-9999").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({ "error": "fiche not found" }));
    assert_eq!(
        get(addr, "/crm/recordings/REC-9999-1.mp3").await.status,
        404
    );
    assert_eq!(
        get(addr, "/crm/recordings/REC-1001-1.wav").await.status,
        404
    );
}

#[tokio::test]
async fn sales_search_returns_the_partial_fiches_sold_on_that_day() {
    let (addr, state) = start(SimConfig::default()).await;
    let r = get(addr, "/crm/sales-with-calls?date=2026-11-02").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["date"], "2026-11-02");
    let fiches = v["fiches"].as_array().unwrap();
    let ids: Vec<&str> = fiches
        .iter()
        .map(|f| f["fiche_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["FICHE-1001", "FICHE-1002"]);
    assert_eq!(fiches[0]["recordings_count"], 2);
    assert_eq!(
        fiches[0]["client"],
        json!({ "nom": "Dubois", "prenom": "Martine" })
    );
    assert!(fiches[0].get("recordings").is_none() && fiches[0].get("cle").is_none());
    assert!(
        fiches[0]["date_vente"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-02T")
    );

    let empty = get(addr, "/crm/sales-with-calls?date=2026-12-25").await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["fiches"], json!([]));

    for bad in [
        "/crm/sales-with-calls?date=2026-13-45",
        "/crm/sales-with-calls?date=02/11/2026",
        "/crm/sales-with-calls",
    ] {
        let r = get(addr, bad).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["error"].is_string());
    }
    assert_eq!(state.stats().crm_sales_requests, 5);
}

#[tokio::test]
async fn a_sales_date_set_to_fail_answers_500_and_searches_are_counted_per_day() {
    let (addr, state) = start(SimConfig {
        fail_sales_dates: vec!["2026-11-04".into()],
        ..SimConfig::default()
    })
    .await;
    let failed = get(addr, "/crm/sales-with-calls?date=2026-11-04").await;
    assert_eq!(failed.status, 500);
    assert!(failed.json()["error"].is_string());
    assert_eq!(failed.json()["fiches"], Value::Null);
    assert_eq!(
        get(addr, "/crm/sales-with-calls?date=2026-11-05")
            .await
            .status,
        200
    );
    assert_eq!(
        get(addr, "/crm/sales-with-calls?date=2026-11-04")
            .await
            .status,
        500
    );
    assert_eq!(
        get(addr, "/crm/sales-with-calls?date=bad").await.status,
        400
    );
    let by_date = stats(addr).await.crm_sales_requests_by_date;
    assert_eq!(
        by_date.into_iter().collect::<Vec<_>>(),
        vec![("2026-11-04".to_string(), 2), ("2026-11-05".to_string(), 1)]
    );
    // A 400-day range of searches is answered at once, the failing day included.
    let started = std::time::Instant::now();
    let mut day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    for _ in 0..400 {
        let r = get(addr, &format!("/crm/sales-with-calls?date={day}")).await;
        assert!(r.status == 200 || day.to_string() == "2026-11-04");
        day = day.succ_opt().unwrap();
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    state.reset_stats();
    assert!(state.stats().crm_sales_requests_by_date.is_empty());
    state.set_config(SimConfig::default());
    assert_eq!(
        get(addr, "/crm/sales-with-calls?date=2026-11-04")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn generated_fiches_are_served_on_the_tenth_of_november() {
    let state = SimState::with_generated_fiches(SimConfig::default(), 3);
    let (addr, _h) = spawn("127.0.0.1:0", state).await.unwrap();
    let v = get(addr, "/crm/sales-with-calls?date=2026-11-10")
        .await
        .json();
    let ids: Vec<&str> = v["fiches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fiche_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&"FICHE-GEN-2"));
    let d = get(addr, "/crm/fiches/FICHE-GEN-2").await.json();
    assert_eq!(d["recordings"].as_array().unwrap().len(), 2);
    let r = stt(
        addr,
        None,
        &[
            Part::Text("model_id", "scribe_v1"),
            Part::Text(
                "cloud_storage_url",
                d["recordings"][1]["url"].as_str().unwrap(),
            ),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn detail_requests_in_flight_are_counted_and_the_maximum_is_kept() {
    let (addr, state) = start(SimConfig {
        latency_ms: 150,
        ..SimConfig::default()
    })
    .await;

    // A client capped at 2 concurrent requests: the simulator sees at most 2.
    let cap = Arc::new(tokio::sync::Semaphore::new(2));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let cap = cap.clone();
            tokio::spawn(async move {
                let _permit = cap.acquire().await.unwrap();
                get(addr, "/crm/fiches/FICHE-1003").await.status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let s = stats(addr).await;
    assert_eq!(s.crm_detail_requests, 6);
    assert_eq!(s.crm_detail_max_in_flight, 2);
    assert_eq!(s.crm_detail_in_flight, 0);

    // Uncapped, with failures: all 5 overlap and the error path still decrements.
    assert_eq!(
        post_json(addr, "/_sim/reset-stats", &[], &json!({}))
            .await
            .status,
        200
    );
    state.set_config(SimConfig {
        latency_ms: 150,
        error_rate: 1.0,
        ..SimConfig::default()
    });
    let tasks: Vec<_> = (0..5)
        .map(|_| tokio::spawn(async move { get(addr, "/crm/fiches/FICHE-1003").await.status }))
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 503);
    }
    let s = state.stats();
    assert_eq!(s.crm_detail_requests, 5);
    assert_eq!(s.crm_detail_max_in_flight, 5);
    assert_eq!(s.crm_detail_in_flight, 0);
    assert_eq!(s.crm_sales_max_in_flight, 0);
}

// ---------------------------------------------------------------- ElevenLabs

#[tokio::test]
async fn speech_to_text_transcribes_a_recording_given_by_cloud_storage_url() {
    let (addr, state) = start(SimConfig::default()).await;
    let url = format!("http://{addr}/crm/recordings/REC-1002-1.mp3");
    let r = stt(
        addr,
        None,
        &[
            Part::Text("model_id", "scribe_v1"),
            Part::Text("cloud_storage_url", &url),
            Part::Text("diarize", "true"),
            Part::Text("timestamps_granularity", "word"),
            Part::Text("language_code", "fr"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["language_code"], "fra");
    assert!(v["language_probability"].as_f64().unwrap() > 0.9);
    assert_eq!(v["text"].as_str().unwrap(), transcript_text("REC-1002-1"));
    let words = v["words"].as_array().unwrap();
    assert_eq!(words[0]["text"], "Bonjour");
    assert_eq!(words[0]["type"], "word");
    assert_eq!(words[0]["speaker_id"], "speaker_0");
    assert_eq!(words[1]["type"], "spacing");
    assert!(words.iter().any(|w| w["speaker_id"] == "speaker_1"));
    let rebuilt: String = words.iter().map(|w| w["text"].as_str().unwrap()).collect();
    assert_eq!(rebuilt, v["text"].as_str().unwrap());
    let starts: Vec<f64> = words.iter().map(|w| w["start"].as_f64().unwrap()).collect();
    assert!(starts.windows(2).all(|p| p[0] <= p[1]));
    assert_eq!(state.stats().stt_requests, 1);
}

#[tokio::test]
async fn speech_to_text_transcribes_an_uploaded_file_downloaded_from_the_crm() {
    let (addr, _) = start(SimConfig::default()).await;
    let audio = get(addr, "/crm/recordings/REC-1006-3.mp3").await.body;
    let r = stt(
        addr,
        None,
        &[
            Part::Text("model_id", "scribe_v1"),
            Part::File("file", &audio),
            Part::Text("diarize", "true"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["text"].as_str().unwrap(),
        transcript_text("REC-1006-3")
    );
}

#[tokio::test]
async fn speech_to_text_rejects_bad_forms_with_422_like_the_real_api() {
    let (addr, _) = start(SimConfig::default()).await;
    let audio = b"SIMREC:REC-1001-1\n";
    let cases: Vec<Vec<Part<'_>>> = vec![
        vec![Part::File("file", audio)],
        vec![Part::Text("model_id", "scribe_v1")],
        vec![
            Part::Text("model_id", "scribe_v1"),
            Part::File("file", b"ID3 not ours"),
        ],
        vec![
            Part::Text("model_id", "scribe_v1"),
            Part::Text(
                "cloud_storage_url",
                "http://x/crm/recordings/REC-0000-9.mp3",
            ),
        ],
        vec![
            Part::Text("model_id", "scribe_v1"),
            Part::File("file", audio),
            Part::Text("cloud_storage_url", "http://x/a.mp3"),
        ],
    ];
    for parts in &cases {
        let r = stt(addr, None, parts).await;
        assert_eq!(r.status, 422, "{}", r.text());
        assert_eq!(r.json()["detail"]["status"], "invalid_request");
        assert!(r.json()["detail"]["message"].is_string());
    }
    let r = request(
        addr,
        "POST",
        "/elevenlabs/v1/speech-to-text",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 422);
}

// ---------------------------------------------------------------- keys

#[tokio::test]
async fn wrong_or_missing_keys_get_401_and_the_speech_to_text_body_echoes_the_key() {
    let keys = ExpectedKeys {
        crm: "crm-good".into(),
        elevenlabs: "xi-good".into(),
        openai: "sk-good".into(),
    };
    let (addr, _) = start(SimConfig {
        expected_api_keys: Some(keys),
        ..SimConfig::default()
    })
    .await;
    let parts = [
        Part::Text("model_id", "scribe_v1"),
        Part::Text(
            "cloud_storage_url",
            "http://h/crm/recordings/REC-1001-1.mp3",
        ),
    ];

    let r = stt(addr, Some("xi-LEAKED-secret-42"), &parts).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["detail"]["status"], "invalid_api_key");
    assert!(
        r.text().contains("xi-LEAKED-secret-42"),
        "the sim echoes the key: {}",
        r.text()
    );
    assert_eq!(stt(addr, None, &parts).await.status, 401);
    assert_eq!(stt(addr, Some("xi-good"), &parts).await.status, 200);

    assert_eq!(get(addr, "/crm/fiches/FICHE-1001").await.status, 401);
    let bad = request(
        addr,
        "GET",
        "/crm/fiches/FICHE-1001",
        &[("x-api-key", "nope")],
        b"",
    )
    .await;
    assert_eq!(bad.status, 401);
    assert!(bad.json()["error"].is_string());
    assert_eq!(
        request(
            addr,
            "GET",
            "/crm/fiches/FICHE-1001",
            &[("x-api-key", "crm-good")],
            b""
        )
        .await
        .status,
        200
    );
    assert_eq!(
        request(
            addr,
            "GET",
            "/crm/sales-with-calls?date=2026-11-03",
            &[("x-api-key", "crm-good")],
            b""
        )
        .await
        .status,
        200
    );

    let body = prompt_request("FICHE-1001", 1);
    let r = post_json(
        addr,
        "/openai/v1/chat/completions",
        &[("Authorization", "Bearer sk-wrong-777")],
        &body,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    assert!(r.text().contains("sk-wrong-777"));
    assert_eq!(
        post_json(addr, "/openai/v1/chat/completions", &[], &body)
            .await
            .status,
        401
    );
    let ok = post_json(
        addr,
        "/openai/v1/chat/completions",
        &[("Authorization", "Bearer sk-good")],
        &body,
    )
    .await;
    assert_eq!(ok.status, 200);
}

// ---------------------------------------------------------------- OpenAI: prompt mode

#[tokio::test]
async fn prompt_mode_answer_cites_text_that_really_occurs_in_the_transcript() {
    let (addr, state) = start(SimConfig::default()).await;
    let r = chat(addr, &prompt_request("FICHE-1001", 2)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4.1-mini");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(v["choices"][0]["message"]["refusal"].is_null());
    let u = &v["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 500);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );

    let a = answer(&r);
    let points = a["points_controle"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert!(a["commentaire"].is_string());
    for (i, p) in points.iter().enumerate() {
        assert_eq!(p["index"], i);
        assert_eq!(p["statut"], "PRESENT", "{p}");
        let cits = p["citations"].as_array().unwrap();
        assert!(!cits.is_empty());
        for c in cits {
            let rid = c["recording_id"].as_str().unwrap();
            let (_, rec) = dataset().recording(rid).unwrap();
            let quote = c["quote"].as_str().unwrap();
            let utt = rec
                .utterances
                .iter()
                .find(|u| u.text.contains(quote))
                .expect("quote occurs in transcript");
            assert_eq!(c["start_s"].as_f64().unwrap(), utt.start_s);
            assert_eq!(c["speaker"], utt.speaker.as_str());
        }
    }
    assert!(
        points[0]["citations"][0]["quote"]
            .as_str()
            .unwrap()
            .contains("enregistrée")
    );

    // FICHE-1002 never mentions the recording: both points are ABSENT, without citations.
    let a = answer(&chat(addr, &prompt_request("FICHE-1002", 2)).await);
    for p in a["points_controle"].as_array().unwrap() {
        assert_eq!(p["statut"], "ABSENT", "{p}");
        assert_eq!(p["citations"], json!([]));
    }
    // FICHE-1008 only half-mentions the withdrawal right.
    let a = answer(&chat(addr, &prompt_request("FICHE-1008", 5)).await);
    assert_eq!(a["points_controle"][0]["statut"], "PARTIEL");
    assert_eq!(state.stats().llm_requests, 3);
}

#[tokio::test]
async fn fabricate_always_claims_present_with_a_quote_absent_from_the_transcript() {
    let (addr, _) = start(SimConfig {
        fabricate: Fabricate::Always,
        ..SimConfig::default()
    })
    .await;
    let a = answer(&chat(addr, &prompt_request("FICHE-1003", 5)).await);
    let all_text: String = dataset()
        .fiche("FICHE-1003")
        .unwrap()
        .recordings
        .iter()
        .map(|r| r.text())
        .collect();
    for p in a["points_controle"].as_array().unwrap() {
        assert_eq!(p["statut"], "PRESENT");
        let invented = p["citations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| !all_text.contains(c["quote"].as_str().unwrap()))
            .count();
        assert!(invented >= 1, "{p}");
    }
}

#[tokio::test]
async fn omit_and_duplicate_points_leave_out_and_repeat_control_points_in_the_answer() {
    let (addr, _) = start(SimConfig {
        omit_points: vec![0],
        duplicate_points: vec![1],
        ..SimConfig::default()
    })
    .await;
    // Step 1 has three control points; FICHE-1001 covers them all.
    let a = answer(&chat(addr, &prompt_request("FICHE-1001", 1)).await);
    let listed: Vec<(u64, &str)> = a["points_controle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["index"].as_u64().unwrap(), p["statut"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [(1, "PRESENT"), (1, "PRESENT"), (2, "PRESENT")]);
    assert_eq!(
        a["points_controle"][0], a["points_controle"][1],
        "the same verdict, repeated"
    );
}

// ---------------------------------------------------------------- OpenAI: tools mode

fn fold(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| match c {
            'à' | 'â' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' => 'i',
            'ô' => 'o',
            'ù' | 'û' => 'u',
            'ç' => 'c',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect()
}

/// What our app's searchTranscript would answer (a naive version).
fn search_transcript(fiche_id: &str, query: &str) -> Value {
    let terms: Vec<String> = fold(query)
        .split_whitespace()
        .filter(|t| t.len() >= 4)
        .map(|t| t[..t.len().min(6)].to_owned())
        .collect();
    let mut scored = Vec::new();
    for r in &dataset().fiche(fiche_id).unwrap().recordings {
        for (i, u) in r.utterances.iter().enumerate() {
            let text = fold(&u.text);
            let n = terms.iter().filter(|t| text.contains(t.as_str())).count();
            if n > 0 {
                scored.push((
                    n,
                    json!({
                        "recording_id": r.recording_id, "index": i, "speaker": u.speaker,
                        "start_s": u.start_s, "end_s": u.end_s, "text": u.text,
                    }),
                ));
            }
        }
    }
    scored.sort_by_key(|s| std::cmp::Reverse(s.0));
    json!({ "matches": scored.into_iter().take(5).map(|(_, m)| m).collect::<Vec<_>>() })
}

fn tools() -> Value {
    json!([
        { "type": "function", "function": { "name": "searchTranscript", "description": "Search the transcripts",
          "parameters": { "type": "object", "properties": { "query": { "type": "string" }, "recording_id": { "type": ["string", "null"] } },
                          "required": ["query", "recording_id"], "additionalProperties": false }, "strict": true } },
        { "type": "function", "function": { "name": "getTranscriptChunks", "description": "Read utterances by index",
          "parameters": { "type": "object", "properties": { "recording_id": { "type": "string" }, "from_index": { "type": "integer" }, "to_index": { "type": "integer" } },
                          "required": ["recording_id", "from_index", "to_index"], "additionalProperties": false }, "strict": true } },
    ])
}

#[tokio::test]
async fn tools_mode_searches_first_then_answers_from_the_tool_results() {
    let (addr, state) = start(SimConfig::default()).await;
    let fiche = "FICHE-1001";
    let st = step(2);
    let recordings: Vec<Value> = dataset()
        .fiche(fiche)
        .unwrap()
        .recordings
        .iter()
        .map(|r| json!({ "recording_id": r.recording_id, "duration_s": r.duration_s, "utterance_count": r.utterances.len() }))
        .collect();
    let user = json!({
        "mode": "tools",
        "step": { "position": 2, "name": st["name"], "instructions": st["instructions"] },
        "control_points": control_points(&st),
        "recordings": recordings,
    });
    let mut messages = vec![
        json!({ "role": "system", "content": "Tu es un auditeur. Utilise les outils pour trouver des preuves." }),
        json!({ "role": "user", "content": user.to_string() }),
    ];
    let body = |messages: &Vec<Value>| {
        json!({ "model": "gpt-4.1-mini", "messages": messages, "tools": tools(), "tool_choice": "auto",
                "response_format": { "type": "json_schema", "json_schema": { "name": "r", "schema": {} } } })
    };

    // Round 1: one searchTranscript call per control point, no transcript needed.
    let r1 = chat(addr, &body(&messages)).await;
    assert_eq!(r1.status, 200, "{}", r1.text());
    let v1 = r1.json();
    assert_eq!(v1["choices"][0]["finish_reason"], "tool_calls");
    let msg = v1["choices"][0]["message"].clone();
    assert!(msg["content"].is_null());
    let calls = msg["tool_calls"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 2);
    for c in &calls {
        assert_eq!(c["type"], "function");
        assert_eq!(c["function"]["name"], "searchTranscript");
        assert!(c["id"].as_str().unwrap().starts_with("call_"));
        let args: Value =
            serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(!args["query"].as_str().unwrap().is_empty());
        assert!(args["recording_id"].is_null());
    }
    assert_eq!(state.stats().llm_tool_calls, 2);

    // Round 2: our app answers each call; the model produces the final answer.
    messages.push(msg);
    for c in &calls {
        let args: Value =
            serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
        let result = search_transcript(fiche, args["query"].as_str().unwrap());
        messages.push(
            json!({ "role": "tool", "tool_call_id": c["id"], "content": result.to_string() }),
        );
    }
    let r2 = chat(addr, &body(&messages)).await;
    assert_eq!(r2.status, 200);
    assert_eq!(r2.json()["choices"][0]["finish_reason"], "stop");
    let a = answer(&r2);
    let points = a["points_controle"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for p in points {
        assert_eq!(p["statut"], "PRESENT", "{p}");
        for c in p["citations"].as_array().unwrap() {
            assert!(
                transcript_text(c["recording_id"].as_str().unwrap())
                    .contains(c["quote"].as_str().unwrap())
            );
        }
    }
    assert_eq!(state.stats().llm_requests, 2);
    assert_eq!(state.stats().llm_tool_requests, 2);
    assert_eq!(state.stats().llm_tool_results, 2);
}

#[tokio::test]
async fn tool_messages_must_answer_the_calls_of_the_assistant_message_just_before() {
    let (addr, state) = start(SimConfig::default()).await;
    let user = json!({ "role": "user", "content": "Bonjour" });
    let assistant = json!({ "role": "assistant", "content": null, "tool_calls": [
        { "id": "call_a", "type": "function", "function": { "name": "searchTranscript", "arguments": "{}" } },
        { "id": "call_b", "type": "function", "function": { "name": "searchTranscript", "arguments": "{}" } },
    ] });
    let answer =
        |id: &str| json!({ "role": "tool", "tool_call_id": id, "content": "{\"matches\":[]}" });
    let cases = [
        (
            json!([user, assistant, answer("call_a")]),
            "call_b",
            "messages.[1].role",
        ),
        (
            json!([
                user,
                assistant,
                answer("call_a"),
                answer("call_b"),
                answer("call_c")
            ]),
            "preceeding message with 'tool_calls'",
            "messages.[4].role",
        ),
        (
            json!([user, answer("call_a")]),
            "preceeding message with 'tool_calls'",
            "messages.[1].role",
        ),
        (
            json!([user, assistant, { "role": "tool", "content": "{}" }]),
            "tool_call_id",
            "messages.[2].tool_call_id",
        ),
    ];
    for (messages, says, param) in cases {
        let r = chat(
            addr,
            &json!({ "model": "m", "messages": messages, "tools": tools() }),
        )
        .await;
        assert_eq!(r.status, 400, "{messages}");
        let e = r.json();
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{e}"
        );
        assert_eq!(e["error"]["param"], param);
    }
    // Answered in any order, the conversation goes on.
    let ok = chat(
        addr,
        &json!({ "model": "m", "messages": [user, assistant, answer("call_b"), answer("call_a")], "tools": tools() }),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(state.stats().llm_tool_results, 2);
    // tool_choice needs tools.
    let r = chat(
        addr,
        &json!({ "model": "m", "messages": [user], "tool_choice": "none" }),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "tool_choice");
}

#[tokio::test]
async fn tools_mode_reads_chunks_when_every_search_came_back_empty() {
    let (addr, _) = start(SimConfig::default()).await;
    let st = step(1);
    let user = json!({
        "mode": "tools", "step": { "position": 1, "name": st["name"], "instructions": st["instructions"] },
        "control_points": control_points(&st),
        "recordings": [{ "recording_id": "REC-1003-1", "duration_s": 200.0, "utterance_count": 36 }],
    });
    let messages = json!([
        { "role": "user", "content": user.to_string() },
        { "role": "assistant", "content": null, "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": "searchTranscript", "arguments": "{\"query\":\"x\",\"recording_id\":null}" } }] },
        { "role": "tool", "tool_call_id": "call_1", "content": "{\"matches\":[]}" },
    ]);
    let v = chat(
        addr,
        &json!({ "model": "m", "messages": messages, "tools": tools() }),
    )
    .await
    .json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "getTranscriptChunks");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args,
        json!({ "recording_id": "REC-1003-1", "from_index": 0, "to_index": 35 })
    );
}

// ---------------------------------------------------------------- OpenAI: streaming, chat, knobs

#[tokio::test]
async fn streaming_sends_chunks_that_rebuild_the_same_answer_and_ends_with_done() {
    let (addr, _) = start(SimConfig::default()).await;
    let plain = chat(addr, &prompt_request("FICHE-1004", 6)).await.json();
    let mut body = prompt_request("FICHE-1004", 6);
    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    let r = chat(addr, &body).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let datas: Vec<String> = r
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_owned))
        .collect();
    assert_eq!(datas.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = datas[..datas.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.len() >= 5);
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        content,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![&json!("stop")]);
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn a_plain_chat_message_gets_a_french_answer_about_its_content() {
    let (addr, _) = start(SimConfig::default()).await;
    let body = json!({
        "model": "gpt-4.1-mini",
        "messages": [
            { "role": "system", "content": "Tu es l'assistant de l'audit de la fiche FICHE-1003." },
            { "role": "user", "content": "Pourquoi la rétractation est-elle signalée absente ?" },
        ],
    });
    let v = chat(addr, &body).await.json();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("rétractation"), "{text}");
    assert!(text.contains("FICHE-1003"), "{text}");
    assert!(serde_json::from_str::<Value>(text).is_err());
}

/// A chat request about FICHE-1001 whose context lists two utterances as callaudit
/// writes them, after an earlier answer that quoted something else.
fn chat_about_fiche_1001(question: &str) -> Value {
    json!({
        "model": "gpt-4.1-mini",
        "messages": [
            { "role": "system", "content": "Fiche FICHE-1001 : 1 enregistrement(s) transcrit(s).\n\
                Enregistrement REC-1001-1 :\n\
                [0.0 s] speaker_0 : Bonjour, je suis Julie de la société Assurup.\n\
                [5.2 s] speaker_0 : Vous bénéficiez d'un droit de rétractation de quatorze jours.\n" },
            { "role": "user", "content": "Qui appelle ?" },
            { "role": "assistant", "content": "On entend : « une phrase d'une réponse précédente »." },
            { "role": "user", "content": question },
        ],
    })
}

#[tokio::test]
async fn a_chat_answer_quotes_the_context_and_in_fabricate_mode_adds_an_invented_quote() {
    let (addr, state) = start(SimConfig::default()).await;
    let body = chat_about_fiche_1001("La rétractation a-t-elle été annoncée ?");
    let text = chat(addr, &body).await.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains("« Vous bénéficiez d'un droit de rétractation de quatorze jours. »"),
        "{text}"
    );
    assert!(!text.contains("réponse précédente"), "{text}");
    assert!(
        !text.contains(callaudit_sim::FABRICATED_CHAT_QUOTE),
        "{text}"
    );
    state.set_config(SimConfig {
        fabricate: Fabricate::Always,
        ..SimConfig::default()
    });
    let text = chat(addr, &body).await.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains(&format!("« {} »", callaudit_sim::FABRICATED_CHAT_QUOTE)),
        "{text}"
    );
    assert!(text.contains("« Vous bénéficiez d'un droit"), "{text}");
}

#[tokio::test]
async fn the_llm_requests_received_are_recorded_oldest_first_until_reset() {
    let (addr, _) = start(SimConfig::default()).await;
    for question in ["première", "seconde"] {
        chat(addr, &chat_about_fiche_1001(question)).await;
    }
    let seen = get(addr, "/_sim/llm/requests").await.json();
    let requests = seen["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["messages"][3]["content"], "première");
    assert_eq!(requests[1], chat_about_fiche_1001("seconde"));
    post_json(addr, "/_sim/reset-stats", &[], &json!({})).await;
    let seen = get(addr, "/_sim/llm/requests").await.json();
    assert_eq!(seen["requests"], json!([]));
}

#[tokio::test]
async fn malformed_truncate_and_refusal_knobs_break_the_answer_as_configured() {
    let (addr, state) = start(SimConfig {
        malformed_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let v = chat(addr, &prompt_request("FICHE-1001", 1)).await.json();
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(serde_json::from_str::<Value>(content).is_err(), "{content}");

    state.set_config(SimConfig {
        truncate_rate: 1.0,
        ..SimConfig::default()
    });
    let v = chat(addr, &prompt_request("FICHE-1001", 1)).await.json();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert!(
        serde_json::from_str::<Value>(v["choices"][0]["message"]["content"].as_str().unwrap())
            .is_err()
    );

    state.set_config(SimConfig {
        refusal_rate: 1.0,
        ..SimConfig::default()
    });
    let v = chat(addr, &prompt_request("FICHE-1001", 1)).await.json();
    assert!(v["choices"][0]["message"]["content"].is_null());
    assert!(
        v["choices"][0]["message"]["refusal"]
            .as_str()
            .unwrap()
            .len()
            > 10
    );
}

#[tokio::test]
async fn rate_limit_and_error_knobs_answer_429_with_retry_after_and_5xx() {
    let (addr, _) = start(SimConfig::default()).await;
    let set = post_json(
        addr,
        "/_sim/config",
        &[],
        &json!({ "rate_limit_rate": 1.0, "seed": 7 }),
    )
    .await;
    assert_eq!(set.status, 200);
    assert_eq!(set.json()["rate_limit_rate"], 1.0);

    let r = chat(addr, &prompt_request("FICHE-1001", 1)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    let r = get(addr, "/crm/fiches/FICHE-1001").await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));
    let r = stt(
        addr,
        None,
        &[
            Part::Text("model_id", "scribe_v1"),
            Part::Text(
                "cloud_storage_url",
                "http://h/crm/recordings/REC-1001-1.mp3",
            ),
        ],
    )
    .await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("1")));

    post_json(addr, "/_sim/config", &[], &json!({ "error_rate": 1.0 })).await;
    let r = chat(addr, &prompt_request("FICHE-1001", 1)).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["type"], "server_error");
    assert!(
        get(addr, "/crm/sales-with-calls?date=2026-11-02")
            .await
            .status
            >= 500
    );
    assert!(
        stt(
            addr,
            None,
            &[
                Part::Text("model_id", "scribe_v1"),
                Part::Text(
                    "cloud_storage_url",
                    "http://h/crm/recordings/REC-1001-1.mp3"
                ),
            ],
        )
        .await
        .status
            >= 500
    );

    let bad = post_json(addr, "/_sim/config", &[], &json!({ "error_rate": 2.0 })).await;
    assert_eq!(bad.status, 400);
    let bad = request(addr, "POST", "/_sim/config", &[], b"not json").await;
    assert_eq!(bad.status, 400);
    assert_eq!(get(addr, "/_sim/config").await.json()["error_rate"], 1.0);
}

#[tokio::test]
async fn invalid_chat_requests_get_openai_shaped_400s() {
    let (addr, _) = start(SimConfig::default()).await;
    let cases = [
        json!({ "messages": [{ "role": "user", "content": "hi" }] }),
        json!({ "model": "m" }),
        json!({ "model": "m", "messages": [] }),
        json!({ "model": "m", "messages": [{ "role": "robot", "content": "hi" }] }),
        json!({ "model": "m", "messages": [{ "role": "user", "content": 12 }] }),
        json!({ "model": "m", "messages": [{ "role": "user", "content": "hi" }], "stream": "yes" }),
    ];
    for c in &cases {
        let r = chat(addr, c).await;
        assert_eq!(r.status, 400, "{c}");
        assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    }
    let r = request(
        addr,
        "POST",
        "/openai/v1/chat/completions",
        &[("Content-Type", "application/json")],
        b"{oops",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].is_string());
}

// ---------------------------------------------------------------- chaos knobs

#[tokio::test]
async fn speech_to_text_calls_are_counted_per_recording_faulted_ones_included() {
    let (addr, state) = start(SimConfig {
        error_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let parts = [
        Part::Text("model_id", "scribe_v1"),
        Part::Text(
            "cloud_storage_url",
            "http://h/crm/recordings/REC-1001-2.mp3",
        ),
    ];
    assert_eq!(stt(addr, None, &parts).await.status, 500);
    state.set_config(SimConfig::default());
    assert_eq!(stt(addr, None, &parts).await.status, 200);
    let s = stats(addr).await;
    assert_eq!(s.stt_requests, 2);
    assert_eq!(
        s.stt_requests_by_recording,
        [("REC-1001-2".to_owned(), 2)].into()
    );
    assert_eq!(
        s.stt_transcripts_by_recording,
        [("REC-1001-2".to_owned(), 1)].into()
    );
}

#[tokio::test]
async fn llm_unauthorized_answers_every_completion_with_a_401_invalid_api_key() {
    let (addr, _) = start(SimConfig {
        llm_unauthorized: true,
        ..SimConfig::default()
    })
    .await;
    let r = chat(addr, &prompt_request("FICHE-1001", 1)).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    // The other vendors keep answering.
    assert_eq!(get(addr, "/crm/fiches/FICHE-1001").await.status, 200);
}
