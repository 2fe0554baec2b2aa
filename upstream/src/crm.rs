//! CRM gateway client (`docs/CRM-CONTRACT.md`): fiche details and the sales search,
//! with typed answers. The whole details answer is kept too (`FicheDetails::raw`): it is
//! stored as the fiche's `details`, fields we do not model included.

use crate::error::UpstreamError;
use crate::http::{classify, client, lenient_time, read_json, transport_error, urlencode};
use crate::metrics::VendorMetrics;
use callaudit_domain::secret::Secret;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::{Duration, Instant};

const VENDOR: &str = "crm";

/// A recording listed in a fiche's details.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CrmRecording {
    /// Stable id.
    pub recording_id: String,
    /// Absolute, pre-authorised audio URL.
    pub url: String,
    /// Call start.
    #[serde(default, deserialize_with = "lenient_time")]
    pub started_at: Option<DateTime<Utc>>,
    /// Call length, seconds.
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// `outbound` / `inbound`.
    #[serde(default)]
    pub direction: Option<String>,
}

/// `GET /fiches/{id}`: the fields we use, and the whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FicheDetails {
    /// The CRM's access key (refreshed by the gateway on every request).
    pub cle: Option<String>,
    /// Sales group.
    pub groupe: Option<String>,
    /// CRM status.
    pub statut: Option<String>,
    /// Sale time.
    pub date_vente: Option<DateTime<Utc>>,
    /// Customer.
    pub client: Value,
    /// Recordings, chronological (entries without id or URL are left out).
    pub recordings: Vec<CrmRecording>,
    /// The answer as received.
    pub raw: Value,
}

#[derive(Deserialize)]
struct DetailsWire {
    #[serde(default)]
    cle: Option<String>,
    #[serde(default)]
    groupe: Option<String>,
    #[serde(default)]
    statut: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    date_vente: Option<DateTime<Utc>>,
    #[serde(default)]
    client: Value,
    #[serde(default)]
    recordings: Vec<Value>,
}

/// A partial fiche of the sales search (no recordings, no details).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SalesFiche {
    /// Stable id.
    #[serde(default)]
    pub fiche_id: String,
    /// Sales group.
    #[serde(default)]
    pub groupe: Option<String>,
    /// Sale time as sent (RFC 3339).
    #[serde(default)]
    pub date_vente: Option<String>,
    /// Customer.
    #[serde(default)]
    pub client: Value,
    /// Recordings the fiche has.
    #[serde(default)]
    pub recordings_count: i64,
}

impl SalesFiche {
    /// The sale time, parsed.
    pub fn sold_at(&self) -> Option<DateTime<Utc>> {
        self.date_vente
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    }
}

#[derive(Deserialize)]
struct SalesWire {
    fiches: Vec<SalesFiche>,
}

/// CRM gateway client.
#[derive(Debug, Clone)]
pub struct CrmClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
    metrics: VendorMetrics,
}

impl CrmClient {
    /// A client for `base_url` (e.g. `https://gw.example/crm`).
    pub fn new(base_url: &str, key: Secret, timeout: Duration) -> Self {
        Self {
            http: client(timeout),
            base: base_url.trim_end_matches('/').to_string(),
            key,
            metrics: VendorMetrics::default(),
        }
    }

    /// The same client recording its calls into `metrics`.
    pub fn with_metrics(self, metrics: VendorMetrics) -> Self {
        Self { metrics, ..self }
    }

    /// Full details of a fiche; `Ok(None)` when the CRM does not know it.
    pub async fn fiche_details(
        &self,
        fiche_id: &str,
    ) -> Result<Option<FicheDetails>, UpstreamError> {
        // `.` and `..` would name another path of the gateway once in a URL.
        if fiche_id.is_empty() || fiche_id.chars().all(|c| c == '.') {
            return Err(UpstreamError::permanent(
                VENDOR,
                format!("{fiche_id:?} is not a fiche id"),
            ));
        }
        let url = format!("{}/fiches/{}", self.base, urlencode(fiche_id));
        let Some(raw) = self
            .get_json::<Value>(&url, "fiche_details", "fiche details")
            .await?
        else {
            return Ok(None);
        };
        let wire: DetailsWire = serde_json::from_value(raw.clone()).map_err(|e| {
            UpstreamError::permanent(
                VENDOR,
                format!("fiche details do not follow the contract: {e}"),
            )
        })?;
        let recordings = wire
            .recordings
            .into_iter()
            .filter_map(|r| serde_json::from_value(r).ok())
            .collect();
        Ok(Some(FicheDetails {
            cle: wire.cle,
            groupe: wire.groupe,
            statut: wire.statut,
            date_vente: wire.date_vente,
            client: wire.client,
            recordings,
            raw,
        }))
    }

    /// Partial fiches sold on `date` that have calls (`GET /sales-with-calls`).
    pub async fn sales_with_calls(
        &self,
        date: chrono::NaiveDate,
    ) -> Result<Vec<SalesFiche>, UpstreamError> {
        let url = format!(
            "{}/sales-with-calls?date={}",
            self.base,
            date.format("%Y-%m-%d")
        );
        let body: Option<SalesWire> = self
            .get_json(&url, "sales_search", "sales search answer")
            .await?;
        body.map(|b| b.fiches).ok_or_else(|| {
            UpstreamError::permanent(VENDOR, "sales search answer has no `fiches` array")
        })
    }

    /// GETs `url` with the key; `Ok(None)` on 404, typed errors otherwise. The call is
    /// recorded as `operation`.
    async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        operation: &str,
        what: &str,
    ) -> Result<Option<T>, UpstreamError> {
        let started = Instant::now();
        let result = self.get_json_once(url, what).await;
        self.metrics.call(VENDOR, operation, started, &result);
        result
    }

    async fn get_json_once<T: DeserializeOwned>(
        &self,
        url: &str,
        what: &str,
    ) -> Result<Option<T>, UpstreamError> {
        let resp = self
            .http
            .get(url)
            .header("x-api-key", self.key.expose())
            .send()
            .await
            .map_err(|e| transport_error(VENDOR, &e))?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let resp = classify(VENDOR, &self.key, resp).await?;
        read_json(VENDOR, resp, || {
            UpstreamError::permanent(VENDOR, format!("{what} is not valid JSON"))
        })
        .await
        .map(Some)
    }
}
