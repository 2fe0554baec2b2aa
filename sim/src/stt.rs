//! ElevenLabs speech-to-text simulator: `POST /elevenlabs/v1/speech-to-text`.

use std::sync::Arc;

use poem::{
    Request, Response, handler,
    http::{HeaderValue, StatusCode},
    web::{Data, Multipart},
};
use serde_json::{Value, json};

use crate::{Fault, Recording, SimState, header, json_response};

fn detail(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({ "detail": { "status": code, "message": message } }),
    )
}

fn invalid(message: &str) -> Response {
    detail(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
}

fn fault_response(f: Fault) -> Response {
    match f {
        Fault::RateLimited => {
            let mut r = detail(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_concurrent_requests",
                "Too many concurrent requests for your subscription. Please try again later.",
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            r
        }
        Fault::ServerError => detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "An internal error occurred while processing the request.",
        ),
    }
}

/// 401 when key checks are on; like the real service, the message echoes what
/// was sent, so callers must not log upstream bodies verbatim.
fn check_key(state: &SimState, req: &Request) -> Option<Response> {
    let expected = state.config().expected_api_keys?;
    match header(req, "xi-api-key") {
        Some(k) if k == expected.elevenlabs => None,
        Some(k) => Some(detail(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            &format!("Invalid API key: {k}"),
        )),
        None => Some(detail(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Invalid API key",
        )),
    }
}

#[derive(Default)]
struct Form {
    model_id: Option<String>,
    file: Option<Vec<u8>>,
    cloud_storage_url: Option<String>,
    diarize: Option<String>,
    timestamps_granularity: Option<String>,
    language_code: Option<String>,
}

async fn read_form(mut mp: Multipart) -> Result<Form, String> {
    let mut form = Form::default();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(format!("Malformed multipart body: {e}")),
        };
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                form.file = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|e| format!("Could not read file: {e}"))?,
                )
            }
            "model_id"
            | "cloud_storage_url"
            | "diarize"
            | "timestamps_granularity"
            | "language_code" => {
                let v = field
                    .text()
                    .await
                    .map_err(|e| format!("Could not read field {name}: {e}"))?;
                let v = Some(v.trim().to_owned());
                match name.as_str() {
                    "model_id" => form.model_id = v,
                    "cloud_storage_url" => form.cloud_storage_url = v,
                    "diarize" => form.diarize = v,
                    "timestamps_granularity" => form.timestamps_granularity = v,
                    _ => form.language_code = v,
                }
            }
            _ => {
                // Other real options (tag_audio_events, num_speakers, …) are accepted and ignored.
                let _ = field.bytes().await;
            }
        }
    }
    Ok(form)
}

fn parse_bool(v: Option<&str>) -> Result<bool, String> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(format!("diarize must be a boolean, got '{other}'")),
    }
}

/// Recording id from an uploaded file (`SIMREC:{id}\n` header).
fn id_from_file(bytes: &[u8]) -> Option<String> {
    let rest = bytes.strip_prefix(b"SIMREC:")?;
    let end = rest
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(rest.len())
        .min(200);
    let id = std::str::from_utf8(&rest[..end]).ok()?.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// Recording id from a URL's last path segment, `.mp3` stripped.
fn id_from_url(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let last = no_query.trim_end_matches('/').rsplit('/').next()?;
    let id = last.strip_suffix(".mp3").unwrap_or(last);
    (!id.is_empty() && !id.contains(':')).then(|| id.to_owned())
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The `words` array: word and spacing entries with increasing times.
fn words(rec: &Recording, diarize: bool, characters: bool) -> Vec<Value> {
    const GAP: f64 = 0.04;
    let mut out = Vec::new();
    let speaker = |s: &str| {
        if diarize {
            s.to_owned()
        } else {
            "speaker_0".to_owned()
        }
    };
    for (ui, u) in rec.utterances.iter().enumerate() {
        let tokens: Vec<&str> = u.text.split(' ').filter(|t| !t.is_empty()).collect();
        let total_chars: usize = tokens
            .iter()
            .map(|t| t.chars().count())
            .sum::<usize>()
            .max(1);
        let speech = (u.end_s - u.start_s - GAP * tokens.len().saturating_sub(1) as f64).max(0.05);
        let mut t = u.start_s;
        for (wi, tok) in tokens.iter().enumerate() {
            let dur = speech * tok.chars().count() as f64 / total_chars as f64;
            let (start, end) = (r3(t), r3(t + dur));
            let mut w = json!({
                "text": tok,
                "start": start,
                "end": end,
                "type": "word",
                "speaker_id": speaker(&u.speaker),
                "logprob": -(((ui * 31 + wi * 17) % 23) as f64) / 100.0 - 0.01,
            });
            if characters {
                let n = tok.chars().count().max(1) as f64;
                let chars: Vec<Value> = tok
                    .chars()
                    .enumerate()
                    .map(|(ci, c)| {
                        json!({
                            "text": c.to_string(),
                            "start": r3(t + dur * ci as f64 / n),
                            "end": r3(t + dur * (ci + 1) as f64 / n),
                        })
                    })
                    .collect();
                w["characters"] = Value::Array(chars);
            }
            out.push(w);
            t += dur;
            if wi + 1 < tokens.len() {
                out.push(json!({
                    "text": " ", "start": r3(t), "end": r3(t + GAP), "type": "spacing",
                    "speaker_id": speaker(&u.speaker), "logprob": 0.0,
                }));
                t += GAP;
            }
        }
        if let Some(next) = rec.utterances.get(ui + 1) {
            out.push(json!({
                "text": " ", "start": r3(u.end_s), "end": r3(next.start_s), "type": "spacing",
                "speaker_id": speaker(&u.speaker), "logprob": 0.0,
            }));
        }
    }
    out
}

/// `POST /elevenlabs/v1/speech-to-text`
#[handler]
pub(crate) async fn speech_to_text(
    req: &Request,
    Data(state): Data<&Arc<SimState>>,
    multipart: poem::Result<Multipart>,
) -> Response {
    state.count_stt();
    state.delay().await;
    if let Some(r) = check_key(state, req) {
        return r;
    }
    let Ok(mp) = multipart else {
        return invalid("Expected a multipart/form-data body");
    };
    let form = match read_form(mp).await {
        Ok(f) => f,
        Err(e) => return invalid(&e),
    };
    match form.model_id.as_deref() {
        None | Some("") => return invalid("model_id is required (e.g. 'scribe_v1')"),
        Some(m) if !m.starts_with("scribe") => return invalid(&format!("Invalid model_id '{m}'")),
        Some(_) => {}
    }
    let diarize = match parse_bool(form.diarize.as_deref()) {
        Ok(d) => d,
        Err(e) => return invalid(&e),
    };
    let granularity = form
        .timestamps_granularity
        .as_deref()
        .filter(|g| !g.is_empty())
        .unwrap_or("word");
    if !matches!(granularity, "none" | "word" | "character") {
        return invalid("timestamps_granularity must be one of 'none', 'word', 'character'");
    }
    let recording_id = match (
        &form.file,
        form.cloud_storage_url.as_deref().filter(|u| !u.is_empty()),
    ) {
        (Some(_), Some(_)) => return invalid("Provide either file or cloud_storage_url, not both"),
        (None, None) => return invalid("Must provide either file or cloud_storage_url"),
        (Some(bytes), None) => match id_from_file(bytes) {
            Some(id) => id,
            None => return invalid("The uploaded file could not be decoded as audio"),
        },
        (None, Some(url)) => match id_from_url(url) {
            Some(id) => id,
            None => {
                return invalid("cloud_storage_url must be a valid http(s) URL to an audio file");
            }
        },
    };
    // Faults come after the form is read, so that a faulted request is counted against
    // the recording it named (how many calls a recording cost, retries included).
    state.count_stt_recording(&recording_id, false);
    if let Some(f) = state.fault() {
        return fault_response(f);
    }
    let Some((_, rec)) = state.dataset().recording(&recording_id) else {
        return invalid(&format!(
            "Could not fetch or decode audio for recording '{recording_id}'"
        ));
    };
    state.count_stt_recording(&recording_id, true);
    let (language_code, probability) = match form.language_code.as_deref() {
        None | Some("") => ("fra".to_owned(), 0.98),
        Some("fr") | Some("fra") | Some("fr-FR") => ("fra".to_owned(), 1.0),
        Some(other) => (other.to_owned(), 1.0),
    };
    let words = if granularity == "none" {
        Vec::new()
    } else {
        words(rec, diarize, granularity == "character")
    };
    json_response(
        StatusCode::OK,
        &json!({
            "language_code": language_code,
            "language_probability": probability,
            "text": rec.text(),
            "words": words,
            "transcription_id": format!("sim-{}", state.next_seq()),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_ids_come_from_the_file_header_or_the_url() {
        assert_eq!(
            id_from_file(b"SIMREC:REC-1001-1\nxyz").as_deref(),
            Some("REC-1001-1")
        );
        assert_eq!(id_from_file(b"ID3...."), None);
        assert_eq!(
            id_from_url("http://h:1/crm/recordings/REC-1001-2.mp3?sig=1").as_deref(),
            Some("REC-1001-2")
        );
        assert_eq!(id_from_url("ftp://x/REC-1"), None);
    }

    #[test]
    fn words_rebuild_the_text_with_increasing_times() {
        let (_, rec) = crate::dataset().recording("REC-1001-1").expect("rec");
        let w = words(rec, true, false);
        let text: String = w.iter().filter_map(|x| x["text"].as_str()).collect();
        assert_eq!(text, rec.text());
        let mut last = 0.0;
        for x in &w {
            let (s, e) = (x["start"].as_f64().unwrap(), x["end"].as_f64().unwrap());
            assert!(s >= last - 1e-9 && e >= s, "{x}");
            last = e;
        }
    }
}
