//! The CRM gateway simulator (contract: `docs/CRM-CONTRACT.md`).

use std::{collections::BTreeMap, sync::Arc};

use chrono::NaiveDate;
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Path},
};
use serde_json::{Value, json};

use crate::{Fault, Fiche, SimState, header, json_response};

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

fn fault_response(f: Fault) -> Response {
    match f {
        Fault::RateLimited => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate limit exceeded, retry later",
            );
            r.headers_mut()
                .insert("retry-after", poem::http::HeaderValue::from_static("1"));
            r
        }
        Fault::ServerError => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "CRM backend temporarily unavailable",
        ),
    }
}

/// 401 when key checks are on and `x-api-key` is wrong or missing.
fn check_key(state: &SimState, req: &Request) -> Option<Response> {
    let expected = state.config().expected_api_keys?;
    match header(req, "x-api-key") {
        Some(k) if k == expected.crm => None,
        _ => Some(error(
            StatusCode::UNAUTHORIZED,
            "invalid or missing api key",
        )),
    }
}

/// The host clients used to reach us, for absolute recording URLs. Only
/// characters valid in a host[:port] are accepted.
fn request_host(req: &Request) -> Option<String> {
    let host = header(req, "host")
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    ok.then_some(host)
}

/// A per-request refreshed access key for the fiche (the gateway refreshes it itself).
fn fresh_cle(state: &SimState, fiche_id: &str) -> String {
    let mut x = state.config().seed ^ state.next_seq().wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for b in fiche_id.bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
    }
    // splitmix64 finaliser
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    format!("cle-{z:016x}")
}

/// The partial fiche returned by the sales search.
fn partial(f: &Fiche) -> Value {
    json!({
        "fiche_id": f.fiche_id,
        "groupe": f.groupe,
        "date_vente": f.date_vente,
        "client": { "nom": f.client.nom, "prenom": f.client.prenom },
        "recordings_count": f.recordings.len(),
    })
}

/// `GET /crm/sales-with-calls?date=YYYY-MM-DD`
#[handler]
pub(crate) async fn sales_with_calls(req: &Request, Data(state): Data<&Arc<SimState>>) -> Response {
    let _in_flight = state.sales_in_flight();
    state.delay().await;
    if let Some(r) = check_key(state, req) {
        return r;
    }
    if let Some(f) = state.fault() {
        return fault_response(f);
    }
    let params = match req.params::<BTreeMap<String, String>>() {
        Ok(p) => p,
        Err(_) => return error(StatusCode::BAD_REQUEST, "invalid query string"),
    };
    let Some(raw) = params.get("date") else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing query parameter 'date' (YYYY-MM-DD)",
        );
    };
    let date = match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) if raw.len() == 10 => d,
        _ => return error(StatusCode::BAD_REQUEST, "invalid date, expected YYYY-MM-DD"),
    };
    state.count_sales_date(raw);
    if state.config().fail_sales_dates.iter().any(|d| d == raw) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CRM backend failed on this date (simulated)",
        );
    }
    let fiches: Vec<Value> = state
        .dataset()
        .fiches_on(date)
        .into_iter()
        .map(partial)
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "date": date.format("%Y-%m-%d").to_string(), "fiches": fiches }),
    )
}

/// `GET /crm/fiches/{fiche_id}`
#[handler]
pub(crate) async fn fiche_detail(
    req: &Request,
    Path(fiche_id): Path<String>,
    Data(state): Data<&Arc<SimState>>,
) -> Response {
    let _in_flight = state.detail_in_flight();
    state.delay().await;
    if let Some(r) = check_key(state, req) {
        return r;
    }
    if let Some(f) = state.fault() {
        return fault_response(f);
    }
    let Some(f) = state.dataset().fiche(&fiche_id) else {
        return error(StatusCode::NOT_FOUND, "fiche not found");
    };
    let Some(host) = request_host(req) else {
        return error(StatusCode::BAD_REQUEST, "missing or invalid Host header");
    };
    let recordings: Vec<Value> = f
        .recordings
        .iter()
        .map(|r| {
            json!({
                "recording_id": r.recording_id,
                "url": format!("http://{host}/crm/recordings/{}.mp3", r.recording_id),
                "started_at": r.started_at,
                "duration_s": r.duration_s,
                "direction": r.direction,
            })
        })
        .collect();
    let body = json!({
        "fiche_id": f.fiche_id,
        "cle": fresh_cle(state, &f.fiche_id),
        "groupe": f.groupe,
        "statut": f.statut,
        "date_vente": f.date_vente,
        "produit": f.produit,
        "commercial": { "nom": f.commercial.nom, "email": f.commercial.email },
        "client": {
            "nom": f.client.nom,
            "prenom": f.client.prenom,
            "email": f.client.email,
            "telephone": f.client.telephone,
            "date_naissance": f.client.date_naissance,
            "code_postal": f.client.code_postal,
        },
        "recordings": recordings,
        "commentaires": f.commentaires.iter().map(|c| json!({
            "date": c.date, "auteur": c.auteur, "texte": c.texte,
        })).collect::<Vec<_>>(),
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /crm/recordings/{recording_id}.mp3` — no API key needed (the URLs
/// handed out in fiche details are pre-authorised, like signed URLs).
#[handler]
pub(crate) async fn recording_file(
    Path(file): Path<String>,
    Data(state): Data<&Arc<SimState>>,
) -> Response {
    state.count_recording();
    state.delay().await;
    if let Some(f) = state.fault() {
        return fault_response(f);
    }
    let Some(recording_id) = file.strip_suffix(".mp3") else {
        return error(StatusCode::NOT_FOUND, "recording not found");
    };
    let Some((_, rec)) = state.dataset().recording(recording_id) else {
        return error(StatusCode::NOT_FOUND, "recording not found");
    };
    let mut bytes = format!("SIMREC:{}\n", rec.recording_id).into_bytes();
    bytes.extend_from_slice(
        format!(
            "callaudit simulated recording; duration_s={}; utterances={}; this is not real audio\n",
            rec.duration_s,
            rec.utterances.len()
        )
        .as_bytes(),
    );
    // A little binary-looking padding, like a real frame header would add.
    bytes.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64, 0x00, 0x00, 0x00, 0x00]);
    Response::builder()
        .status(StatusCode::OK)
        .content_type("audio/mpeg")
        .header(
            "content-disposition",
            format!("inline; filename=\"{}.mp3\"", rec.recording_id),
        )
        .body(bytes)
}
