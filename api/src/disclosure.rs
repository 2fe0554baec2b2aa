//! How a reader sees the personal data in what the api returns (citations, comments,
//! chat): redacted — typed placeholders, numbered as the LLM saw them — unless they hold
//! `pii:read` (admins by default); then in clear, placeholders replaced by the values
//! they stand for, and the read is logged (who, what, when) in `pii_access_log`.

use crate::auth::BearerAuth;
use crate::error::ApiError;
use callaudit_db::AsyncPgConnection;
use callaudit_db::personal_data::{self as store, Access};
use callaudit_domain::personal_data::{ERASED_KEYS, redact_transcripts};
use callaudit_domain::pii::Redactor;
use callaudit_domain::rbac::Permission;
use serde_json::Value;

/// The redactor of a fiche: fed its transcripts in recording order, it numbers each value
/// as the LLM's prompts did.
async fn of_fiche(conn: &mut AsyncPgConnection, fiche_id: &str) -> Result<Redactor, ApiError> {
    let transcripts: Vec<_> = callaudit_db::transcriptions::of_fiche(conn, fiche_id)
        .await?
        .into_iter()
        .filter_map(|(_, t)| t)
        .collect();
    let mut redactor = Redactor::new();
    redact_transcripts(&transcripts, &mut redactor);
    Ok(redactor)
}

/// What a reader may see of one fiche's personal data.
#[derive(Debug)]
pub(crate) struct Disclosure {
    redactor: Redactor,
    clear: bool,
}

impl Disclosure {
    /// For the bearer reading about `fiche_id` (`subject_kind`/`subject_id`: what they
    /// read, for the access log).
    pub(crate) async fn for_reader(
        auth: &BearerAuth,
        conn: &mut AsyncPgConnection,
        fiche_id: &str,
        subject_kind: &str,
        subject_id: &str,
    ) -> Result<Self, ApiError> {
        let clear = auth.require(Permission::PII_READ).ok();
        let redactor = of_fiche(conn, fiche_id).await?;
        if let Some(who) = clear {
            store::log_access(
                conn,
                &Access {
                    user_id: Some(who.user.id),
                    user_email: Some(&who.user.email),
                    action: "read",
                    subject_kind,
                    subject_id,
                    detail: serde_json::json!({"fiche_id": fiche_id}),
                },
            )
            .await?;
        }
        Ok(Self {
            redactor,
            clear: clear.is_some(),
        })
    }

    /// `text` as this reader sees it.
    pub(crate) fn text(&mut self, text: &str) -> String {
        if self.clear {
            self.unredact(text)
        } else {
            self.redactor.redact(text).text
        }
    }

    /// Placeholders replaced by the values they stand for (unknown ones stay).
    fn unredact(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            match tail.find(']') {
                Some(close) => {
                    let placeholder = &tail[..=close];
                    out.push_str(self.redactor.value_of(placeholder).unwrap_or(placeholder));
                    rest = &tail[close + 1..];
                }
                None => {
                    out.push_str(tail);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Every string of `value` under the keys that carry what people said (quotes,
    /// matched text, comments, reasons, hints) as this reader sees it.
    pub(crate) fn json(&mut self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if ERASED_KEYS.contains(&k.as_str())
                        && let Value::String(s) = v
                    {
                        *s = self.text(s);
                    } else {
                        self.json(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            _ => {}
        }
    }
}
