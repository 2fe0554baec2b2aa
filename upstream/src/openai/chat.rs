//! One chat completion whose answer follows a strict JSON schema (prompt mode).

use super::{OpenAiClient, Usage, json_content, response_format};
use crate::error::UpstreamError;
use serde_json::{Value, json};

/// One structured-output completion.
#[derive(Debug, Clone, Copy)]
pub struct JsonRequest<'a> {
    /// Model.
    pub model: &'a str,
    /// System message.
    pub system: &'a str,
    /// User message.
    pub user: &'a str,
    /// Name of the answer schema.
    pub schema_name: &'a str,
    /// Strict JSON schema of the answer.
    pub schema: &'a Value,
}

impl OpenAiClient {
    /// One chat completion whose answer must follow `req.schema` (strict json_schema);
    /// returns the parsed JSON answer. Refusals, truncation and invalid JSON are typed:
    /// truncation and invalid JSON are retryable (a new sample may succeed); a refusal is
    /// asked once more at once, and a second one is permanent.
    pub async fn json_completion(
        &self,
        req: JsonRequest<'_>,
    ) -> Result<(Value, Usage), UpstreamError> {
        let request = json!({
            "model": req.model,
            "temperature": 0,
            "messages": [{"role": "system", "content": req.system}, {"role": "user", "content": req.user}],
            "response_format": response_format(req.schema_name, req.schema),
        });
        let (mut requests, mut usage) = (0, Usage::default());
        let choice = self
            .checked_choice(&request, &mut requests, &mut usage)
            .await?;
        Ok((json_content(&choice)?, usage))
    }
}
