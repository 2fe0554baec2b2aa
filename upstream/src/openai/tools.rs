//! A bounded OpenAI tool-calling conversation (transcript-tools mode, `use_rlm`).

use super::{OpenAiClient, ToolLoopLimits, Usage, VENDOR, json_content, response_format};
use crate::error::UpstreamError;
use serde_json::{Value, json};

/// One tool-calling conversation ([`OpenAiClient::tools_completion`]): the opening
/// messages, the tools offered, the schema of the final answer and the bounds.
#[derive(Debug, Clone, Copy)]
pub struct ToolsRequest<'a> {
    /// Model.
    pub model: &'a str,
    /// System message.
    pub system: &'a str,
    /// First user message.
    pub user: &'a str,
    /// OpenAI `tools` array (function tools).
    pub tools: &'a Value,
    /// Name of the answer schema.
    pub schema_name: &'a str,
    /// Strict JSON schema of the final answer.
    pub schema: &'a Value,
    /// Bounds of the conversation.
    pub limits: ToolLoopLimits,
}

/// What a tool-calling conversation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCompletion {
    /// The final answer, parsed (it follows the requested schema).
    pub answer: Value,
    /// Tokens summed over every request of the conversation.
    pub usage: Usage,
    /// Chat completion requests sent.
    pub requests: u32,
    /// Answers that asked for tools.
    pub tool_rounds: u32,
    /// Tool calls whose result was returned to the model.
    pub tool_calls: u32,
    /// Characters of tool results returned to the model.
    pub tool_chars: usize,
    /// Whether a bound was reached and the final answer forced (`tool_choice: "none"`).
    pub budget_exhausted: bool,
}

/// What the model is told when it may not read more.
const BUDGET_EXHAUSTED: &str = "Tool budget exhausted: no more tool calls. Answer now, in the \
     required JSON format, from the excerpts already read; quote nothing you have not read \
     in a tool result.";

impl OpenAiClient {
    /// A conversation with OpenAI tool calling whose final answer must follow `schema`
    /// (strict json_schema), as [`Self::json_completion`].
    ///
    /// Each round sends the messages with `tools` and `tool_choice: "auto"`; when the
    /// answer holds `message.tool_calls`, the assistant message (with its calls) and one
    /// `tool` message per call (`run_tool(name, arguments)`, serialised) are appended and
    /// the next round starts; an answer without tool calls is the final one. The
    /// conversation is bounded by `req.limits`: once the model has had
    /// `max_tool_rounds` answers with tool calls, or a result would take the tool text past
    /// `max_tool_chars` (that result is then withheld), the model is told in the tool
    /// results and the next request forces the final answer with `tool_choice: "none"`.
    /// Choosing an answer over a failure keeps what was read useful: evidence gating then
    /// judges the answer like any other. A model that still calls tools after that is a
    /// retryable failure (a new sample may comply).
    ///
    /// Errors are those of [`Self::json_completion`], for every round; a tool call without
    /// id is retryable. Token usage is summed over the rounds.
    pub async fn tools_completion(
        &self,
        req: ToolsRequest<'_>,
        mut run_tool: impl FnMut(&str, &str) -> Value,
    ) -> Result<ToolCompletion, UpstreamError> {
        let ToolsRequest {
            model,
            system,
            user,
            tools,
            schema_name,
            schema,
            limits,
        } = req;
        let mut messages = vec![
            json!({"role": "system", "content": system}),
            json!({"role": "user", "content": user}),
        ];
        let mut out = ToolCompletion {
            answer: Value::Null,
            usage: Usage::default(),
            requests: 0,
            tool_rounds: 0,
            tool_calls: 0,
            tool_chars: 0,
            budget_exhausted: limits.max_tool_rounds == 0,
        };
        loop {
            let forced = out.budget_exhausted;
            let request = json!({
                "model": model,
                "temperature": 0,
                "messages": messages,
                "tools": tools,
                "tool_choice": if forced { "none" } else { "auto" },
                "response_format": response_format(schema_name, schema),
            });
            let choice = self
                .checked_choice(&request, &mut out.requests, &mut out.usage)
                .await?;
            let calls = match &choice.message.tool_calls {
                Some(calls) if !calls.is_empty() => calls,
                _ => {
                    out.answer = json_content(&choice)?;
                    return Ok(out);
                }
            };
            if forced {
                return Err(UpstreamError::transient(
                    VENDOR,
                    "the model asked for tools after tool_choice \"none\"",
                ));
            }
            out.tool_rounds += 1;
            let last_round = out.tool_rounds >= limits.max_tool_rounds;
            let mut echoed = Vec::with_capacity(calls.len());
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                let id = call
                    .id
                    .as_deref()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| UpstreamError::transient(VENDOR, "a tool call has no id"))?;
                let (name, arguments) = (&call.function.name, &call.function.arguments);
                // Only function tools are offered, so every call is a function call.
                echoed.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }));
                let content = if out.budget_exhausted {
                    json!({"error": BUDGET_EXHAUSTED}).to_string()
                } else {
                    let mut result = run_tool(name, arguments);
                    if last_round && let Some(o) = result.as_object_mut() {
                        o.insert("notice".into(), json!(BUDGET_EXHAUSTED));
                    }
                    let text = result.to_string();
                    let chars = text.chars().count();
                    if out.tool_chars + chars > limits.max_tool_chars {
                        out.budget_exhausted = true;
                        json!({"error": BUDGET_EXHAUSTED}).to_string()
                    } else {
                        out.tool_chars += chars;
                        out.tool_calls += 1;
                        text
                    }
                };
                results.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            messages.push(json!({
                "role": "assistant",
                "content": choice.message.content,
                "tool_calls": echoed,
            }));
            messages.extend(results);
            if last_round {
                out.budget_exhausted = true;
            }
        }
    }
}
