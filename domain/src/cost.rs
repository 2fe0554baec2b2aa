//! What an audit cost: LLM requests and tokens, seconds of audio sent to speech-to-text,
//! and an estimate in money from a configurable price table (`COST_PRICE_TABLE`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Prices of one LLM model, per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Per million prompt (input) tokens.
    pub input_per_1m_tokens: f64,
    /// Per million completion (output) tokens.
    pub output_per_1m_tokens: f64,
}

/// The price table: LLM models by name, speech-to-text per hour of audio, one currency.
///
/// ```json
/// {"currency": "USD", "models": {"gpt-4.1-mini": {"input_per_1m_tokens": 0.4,
///  "output_per_1m_tokens": 1.6}}, "speech_to_text_per_hour": 0.4}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// Currency of every price (e.g. `USD`).
    pub currency: String,
    /// LLM prices by model name.
    #[serde(default)]
    pub models: BTreeMap<String, ModelPrice>,
    /// Speech-to-text, per hour of audio.
    #[serde(default)]
    pub speech_to_text_per_hour: Option<f64>,
}

impl PriceTable {
    /// Parses and checks a table: a currency, and no negative or non-finite price.
    pub fn parse(json: &str) -> Result<Self, String> {
        let table: PriceTable =
            serde_json::from_str(json).map_err(|e| format!("invalid price table: {e}"))?;
        let ok = |p: f64| p.is_finite() && p >= 0.0;
        if table.currency.trim().is_empty() {
            return Err("invalid price table: a currency is required".into());
        }
        for (model, p) in &table.models {
            if !ok(p.input_per_1m_tokens) || !ok(p.output_per_1m_tokens) {
                return Err(format!("invalid price table: negative price for {model}"));
            }
        }
        if table.speech_to_text_per_hour.is_some_and(|p| !ok(p)) {
            return Err("invalid price table: negative speech-to-text price".into());
        }
        Ok(table)
    }
}

/// The LLM use of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepUsage {
    /// Model.
    pub model: Option<String>,
    /// Chat completion requests (1 in prompt mode; every round in tools mode).
    pub requests: u32,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
}

/// What an audit used and, when the table prices all of it, what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditCost {
    /// Chat completion requests.
    pub llm_requests: u32,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Seconds of audio of the recordings the audit read (transcribed once per recording,
    /// shared by every audit of the fiche).
    pub speech_to_text_seconds: f64,
    /// The estimate, or None when no table is set or a model it used is not priced.
    pub estimated_cost: Option<f64>,
    /// Currency of the estimate.
    pub currency: Option<String>,
}

/// Totals and estimate of an audit's steps and audio under `prices`.
pub fn audit_cost(
    steps: &[StepUsage],
    audio_seconds: f64,
    prices: Option<&PriceTable>,
) -> AuditCost {
    let llm_requests = steps.iter().map(|s| s.requests).sum();
    let prompt_tokens = steps.iter().map(|s| s.prompt_tokens).sum();
    let completion_tokens = steps.iter().map(|s| s.completion_tokens).sum();
    let estimated_cost = prices.and_then(|table| {
        let mut total = 0.0;
        for s in steps {
            let price = table.models.get(s.model.as_deref()?)?;
            total += s.prompt_tokens as f64 * price.input_per_1m_tokens / 1e6
                + s.completion_tokens as f64 * price.output_per_1m_tokens / 1e6;
        }
        if audio_seconds > 0.0 {
            total += audio_seconds / 3600.0 * table.speech_to_text_per_hour?;
        }
        Some((total * 1e6).round() / 1e6)
    });
    AuditCost {
        llm_requests,
        prompt_tokens,
        completion_tokens,
        speech_to_text_seconds: audio_seconds,
        estimated_cost,
        currency: prices.map(|p| p.currency.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PriceTable {
        PriceTable::parse(
            r#"{"currency": "EUR", "models": {"m": {"input_per_1m_tokens": 2.0,
                "output_per_1m_tokens": 8.0}}, "speech_to_text_per_hour": 0.6}"#,
        )
        .unwrap()
    }

    fn step(model: &str, requests: u32, prompt: i64, completion: i64) -> StepUsage {
        StepUsage {
            model: Some(model.into()),
            requests,
            prompt_tokens: prompt,
            completion_tokens: completion,
        }
    }

    #[test]
    fn an_audit_costs_its_tokens_and_its_audio_at_the_table_prices() {
        // 1.5M prompt tokens at 2/M = 3; 0.25M completion at 8/M = 2; 30 min at 0.6/h = 0.3.
        let cost = audit_cost(
            &[
                step("m", 1, 1_000_000, 200_000),
                step("m", 3, 500_000, 50_000),
            ],
            1800.0,
            Some(&table()),
        );
        assert_eq!(cost.llm_requests, 4);
        assert_eq!(cost.prompt_tokens, 1_500_000);
        assert_eq!(cost.completion_tokens, 250_000);
        assert_eq!(cost.estimated_cost, Some(5.3));
        assert_eq!(cost.currency.as_deref(), Some("EUR"));
    }

    #[test]
    fn an_unpriced_model_or_no_table_gives_no_estimate_but_the_totals() {
        let cost = audit_cost(&[step("other", 1, 10, 5)], 60.0, Some(&table()));
        assert_eq!(cost.estimated_cost, None);
        assert_eq!((cost.prompt_tokens, cost.completion_tokens), (10, 5));
        assert_eq!(
            audit_cost(&[step("m", 1, 10, 5)], 0.0, None).estimated_cost,
            None
        );
    }

    #[test]
    fn a_table_without_currency_or_with_a_negative_price_is_refused() {
        assert!(PriceTable::parse(r#"{"currency": "", "models": {}}"#).is_err());
        assert!(
            PriceTable::parse(
                r#"{"currency": "USD", "models": {"m": {"input_per_1m_tokens": -1, "output_per_1m_tokens": 1}}}"#
            )
            .is_err()
        );
        assert!(PriceTable::parse(r#"{"currency": "USD", "price": 1}"#).is_err());
    }
}
