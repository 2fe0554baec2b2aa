//! The e-mail summary of an automation run (plain text and HTML, the same facts in
//! both, no link), and the check of a schedule's notification addresses.
//!
//! Addresses are checked when a schedule is written, so what reaches the SMTP envelope
//! and the `To:` header is a bare `local@domain` with no space, no control character, no
//! quote, comma, angle bracket or semicolon: no header can be injected through it. The
//! schedule's name goes into the subject with its control characters replaced.

use crate::automation::IgnoredFiche;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `automation.notify_email` input: the ended run whose summary is e-mailed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct NotifyEmailInput {
    /// The run.
    pub run_id: String,
}

/// Why an e-mail address is refused (the api answers it with a 422).
pub fn check_email(addr: &str) -> Result<(), String> {
    if addr.is_empty() {
        return Err("it is empty".into());
    }
    if addr.len() > 254 {
        return Err("it is longer than 254 characters".into());
    }
    if let Some(c) = addr
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || "<>()[],;:\"\\".contains(*c))
    {
        return Err(format!("it contains the character {c:?}"));
    }
    let (local, domain) = addr
        .rsplit_once('@')
        .ok_or_else(|| "it has no @".to_string())?;
    if local.is_empty() || local.len() > 64 {
        return Err("its local part must have 1 to 64 characters".into());
    }
    if local.contains('@') {
        return Err("it has more than one @".into());
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("its local part has a misplaced dot".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("its domain {domain:?} has no dot"));
    }
    for label in labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-');
        if !ok {
            return Err(format!("its domain {domain:?} is not a host name"));
        }
    }
    Ok(())
}

/// The summary fields the e-mail reads (`automation_runs.result_summary`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SummaryFacts {
    /// Fiches selected for audit.
    pub selected: u64,
    /// Fiches left out, with their reasons.
    pub ignored: Vec<IgnoredFiche>,
    /// Fiches with transcribed recordings.
    pub transcribed: u64,
    /// Audits completed.
    pub audited: u64,
    /// Audits failed.
    pub failed: u64,
    /// Rounds of `retryFailed`.
    pub retries: u64,
    /// Durations by name, in ms (`totalMs`…).
    pub durations: BTreeMap<String, serde_json::Value>,
}

/// What the e-mail tells of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The schedule's name.
    pub schedule_name: String,
    /// The run.
    pub run_id: String,
    /// `completed`, `partial` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// The time it was scheduled for.
    pub scheduled_at: DateTime<Utc>,
    /// Its summary.
    pub summary: SummaryFacts,
}

/// The e-mail of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEmail {
    /// Subject (one line).
    pub subject: String,
    /// `text/plain` part.
    pub text: String,
    /// `text/html` part.
    pub html: String,
}

/// Ignored fiches listed in an e-mail (the rest counted).
pub const MAX_IGNORED_LISTED: usize = 50;

/// One line, printable: control characters (CR, LF…) become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `totalMs` → `total`; a value in ms as seconds with one decimal.
fn duration_line(name: &str, value: &serde_json::Value) -> Option<(String, String)> {
    let ms = value.as_f64()?;
    let label = name.strip_suffix("Ms").unwrap_or(name).to_string();
    Some((label, format!("{:.1} s", ms / 1000.0)))
}

/// Renders the e-mail of `r`.
pub fn render(r: &RunReport) -> RunEmail {
    let name = one_line(&r.schedule_name);
    let s = &r.summary;
    let subject = format!("[callaudit] {name}: run {}", one_line(&r.status));
    let counts = [
        ("Selected", s.selected),
        ("Ignored", s.ignored.len() as u64),
        ("Transcribed", s.transcribed),
        ("Audited", s.audited),
        ("Failed", s.failed),
        ("Retries", s.retries),
    ];
    let durations: Vec<(String, String)> = s
        .durations
        .iter()
        .filter_map(|(k, v)| duration_line(k, v))
        .collect();
    let listed = &s.ignored[..s.ignored.len().min(MAX_IGNORED_LISTED)];
    let more = s.ignored.len() - listed.len();
    let scheduled = r.scheduled_at.format("%Y-%m-%d %H:%M UTC").to_string();

    let mut text = format!(
        "Automation \"{name}\"\nRun: {}\nScheduled for: {scheduled}\nStatus: {}\n",
        r.run_id, r.status
    );
    if let Some(e) = &r.error {
        text.push_str(&format!("Error: {}\n", one_line(e)));
    }
    text.push('\n');
    for (label, n) in counts {
        text.push_str(&format!("{label}: {n}\n"));
    }
    for (label, d) in &durations {
        text.push_str(&format!("Duration ({label}): {d}\n"));
    }
    if !listed.is_empty() {
        text.push_str("\nIgnored fiches:\n");
        for f in listed {
            text.push_str(&format!(
                "- {}: {}\n",
                one_line(&f.fiche_id),
                one_line(&f.reason)
            ));
        }
        if more > 0 {
            text.push_str(&format!("- and {more} more\n"));
        }
    }

    let mut html = format!(
        "<!DOCTYPE html>\n<html><body>\n<h1>Automation &quot;{}&quot;</h1>\n<p>Run {}<br>Scheduled for {scheduled}<br>Status: <strong>{}</strong></p>\n",
        escape(&name),
        escape(&r.run_id),
        escape(&r.status)
    );
    if let Some(e) = &r.error {
        html.push_str(&format!("<p>Error: {}</p>\n", escape(&one_line(e))));
    }
    html.push_str("<table>\n");
    for (label, n) in counts {
        html.push_str(&format!("<tr><th>{label}</th><td>{n}</td></tr>\n"));
    }
    for (label, d) in &durations {
        html.push_str(&format!(
            "<tr><th>Duration ({})</th><td>{d}</td></tr>\n",
            escape(label)
        ));
    }
    html.push_str("</table>\n");
    if !listed.is_empty() {
        html.push_str("<h2>Ignored fiches</h2>\n<ul>\n");
        for f in listed {
            html.push_str(&format!(
                "<li>{}: {}</li>\n",
                escape(&one_line(&f.fiche_id)),
                escape(&one_line(&f.reason))
            ));
        }
        if more > 0 {
            html.push_str(&format!("<li>and {more} more</li>\n"));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</body></html>\n");
    RunEmail {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_could_carry_a_header_are_refused() {
        for ok in [
            "ops@example.test",
            "first.last+tag@sub.example.co",
            "a@b.fr",
        ] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("ops.example.test", "no @"),
            ("ops@example.test\r\nBcc: x@evil.test", "'\\r'"),
            ("ops@example.test\nBcc:x@evil.test", "'\\n'"),
            ("a b@example.test", "' '"),
            ("Ops<ops@example.test>", "'<'"),
            ("a@example.test,b@example.test", "','"),
            ("a@b@example.test", "more than one @"),
            ("@example.test", "local part"),
            (".a@example.test", "misplaced dot"),
            ("a@localhost", "no dot"),
            ("a@exa_mple.test", "not a host name"),
            ("a@-x.test", "not a host name"),
        ] {
            let err = check_email(bad).expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    fn report() -> RunReport {
        RunReport {
            schedule_name: "Nightly <MDP>\r\nBcc: evil@x.test".into(),
            run_id: "r-1".into(),
            status: "partial".into(),
            error: None,
            scheduled_at: DateTime::parse_from_rfc3339("2026-12-04T05:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            summary: serde_json::from_value(serde_json::json!({
                "selected": 3, "audited": 2, "failed": 1, "transcribed": 3,
                "ignored": [{"fiche_id": "F-1", "reason": "2 recordings, above maxRecordingsPerFiche 1"}],
                "durations": {"totalMs": 12345}
            }))
            .unwrap(),
        }
    }

    #[test]
    fn both_parts_tell_the_counts_and_the_subject_is_one_line() {
        let e = render(&report());
        assert_eq!(
            e.subject,
            "[callaudit] Nightly <MDP>  Bcc: evil@x.test: run partial"
        );
        assert!(!e.subject.contains('\r') && !e.subject.contains('\n'));
        for line in [
            "Status: partial",
            "Selected: 3",
            "Ignored: 1",
            "Audited: 2",
            "Failed: 1",
            "Duration (total): 12.3 s",
            "- F-1: 2 recordings, above maxRecordingsPerFiche 1",
        ] {
            assert!(e.text.contains(line), "{line} in {}", e.text);
        }
        for cell in [
            "<tr><th>Selected</th><td>3</td></tr>",
            "<tr><th>Ignored</th><td>1</td></tr>",
            "<tr><th>Audited</th><td>2</td></tr>",
            "<tr><th>Failed</th><td>1</td></tr>",
            "<li>F-1: 2 recordings, above maxRecordingsPerFiche 1</li>",
            "Nightly &lt;MDP&gt;",
        ] {
            assert!(e.html.contains(cell), "{cell} in {}", e.html);
        }
        assert!(!e.html.contains("<MDP>"));
        for part in [&e.text, &e.html] {
            assert!(!part.contains("http"), "link-free: {part}");
        }
    }
}
