//! Realtime (Pusher Channels): which channel and event name each stored event is sent
//! as, which channels a browser may subscribe to, and how a payload is kept under
//! Pusher's size limit. Pure: the relay (`callaudit_upstream::realtime`) reads the
//! `events` table and sends what these functions say; the api's
//! `POST /api/realtime/pusher/auth` signs what [`parse_job_channel`] accepts.
//!
//! Channels are private and named after the job they follow: an event of topic
//! `{kind}:{id}` goes to `private-job-{kind}-{id}` (`audit`, `batch`, `fetch-job`,
//! `automation-run`) under its own type as the Pusher event name (`audit.completed`,
//! `batch.progress`…). An automation run's events are renamed
//! `automation.run.started|completed|failed`, and the progress of the run's audits (the
//! `batch.started` / `batch.progress` events of the batch whose id is the run's id) is
//! also sent on the run's channel as `automation.run.progress`.

use serde_json::{Map, Value, json};

/// Prefix of every channel callaudit sends to.
pub const CHANNEL_PREFIX: &str = "private-job-";

/// Pusher refuses an event whose `data` is larger than 10 KB; payloads are cut below
/// this many bytes of JSON (a margin under 10,240 for the envelope Pusher counts).
pub const MAX_DATA_BYTES: usize = 10_000;

/// Longest channel name Pusher accepts.
pub const MAX_CHANNEL_CHARS: usize = 164;

/// The kinds of job that have a channel, as they appear in topics and channel names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// `audit:{id}`.
    Audit,
    /// `batch:{id}`.
    Batch,
    /// `fetch-job:{id}`.
    FetchJob,
    /// `automation-run:{id}`.
    AutomationRun,
}

impl JobKind {
    /// Every kind, longest name first (so `automation-run-…` is not read as another).
    pub const ALL: [JobKind; 4] = [
        JobKind::AutomationRun,
        JobKind::FetchJob,
        JobKind::Audit,
        JobKind::Batch,
    ];

    /// The name in topics and channels.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Audit => "audit",
            JobKind::Batch => "batch",
            JobKind::FetchJob => "fetch-job",
            JobKind::AutomationRun => "automation-run",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The private channel of job `id` of `kind`.
pub fn job_channel(kind: JobKind, id: &str) -> String {
    format!("{CHANNEL_PREFIX}{}-{id}", kind.name())
}

/// The job a topic (`{kind}:{id}`) is about; `None` for topics without a channel.
pub fn job_of_topic(topic: &str) -> Option<(JobKind, &str)> {
    let (kind, id) = topic.split_once(':')?;
    let kind = JobKind::from_name(kind)?;
    (!id.is_empty() && id.bytes().all(channel_byte)).then_some((kind, id))
}

/// Why a channel name is not one callaudit signs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Not `private-…` (public and presence channels are not ours to sign).
    #[error("only private channels are signed; {0:?} is not one")]
    NotPrivate(String),
    /// A private channel, but not `private-job-{kind}-{id}` of a known kind.
    #[error(
        "{0:?} is not a job channel: expected private-job-{{audit|batch|fetch-job|automation-run}}-{{id}}"
    )]
    NotAJobChannel(String),
}

/// The job a subscription's channel is about: `private-job-{kind}-{id}` with a known
/// kind and a non-empty id of channel-name characters (the id's own format is the
/// caller's to check).
pub fn parse_job_channel(channel: &str) -> Result<(JobKind, &str), ChannelError> {
    if !channel.starts_with("private-") || channel.starts_with("private-encrypted-") {
        return Err(ChannelError::NotPrivate(channel.to_string()));
    }
    let not_job = || ChannelError::NotAJobChannel(channel.to_string());
    if channel.chars().count() > MAX_CHANNEL_CHARS {
        return Err(not_job());
    }
    let rest = channel.strip_prefix(CHANNEL_PREFIX).ok_or_else(not_job)?;
    for kind in JobKind::ALL {
        if let Some(id) = rest
            .strip_prefix(kind.name())
            .and_then(|r| r.strip_prefix('-'))
        {
            if id.is_empty() || !id.bytes().all(channel_byte) {
                return Err(not_job());
            }
            return Ok((kind, id));
        }
    }
    Err(not_job())
}

/// Characters Pusher allows in a channel name.
fn channel_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_=@,.;".contains(&b)
}

/// Whether `socket_id` has the shape Pusher gives them (`{digits}.{digits}`).
pub fn valid_socket_id(socket_id: &str) -> bool {
    let Some((a, b)) = socket_id.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    digits(a) && digits(b)
}

/// One message for Pusher: an event name on one channel with its JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct RealtimeMessage {
    /// `private-job-{kind}-{id}`.
    pub channel: String,
    /// The Pusher event name.
    pub name: String,
    /// The data (an object, at most [`MAX_DATA_BYTES`] once serialised).
    pub data: Value,
}

/// What the relay knows of a topic's job beyond the event itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobContext {
    /// The topic is the batch of an automation run (same id) whose schedule has
    /// realtime notifications on: its progress also goes to the run's channel.
    pub batch_of_realtime_run: bool,
    /// The topic is an automation run whose schedule has realtime notifications off:
    /// its `automation.run.*` events are not sent.
    pub run_realtime_off: bool,
}

/// The Pusher event name of an automation run's stored event type.
fn run_event_name(kind: &str) -> Option<&'static str> {
    match kind {
        "automation/started" => Some("automation.run.started"),
        "automation/completed" => Some("automation.run.completed"),
        "automation/failed" => Some("automation.run.failed"),
        _ => None,
    }
}

/// The messages stored event `event_id` (`topic`, `kind`, `payload`) is sent as: none
/// for topics without a channel, one on its job's channel, and for the batch of a
/// realtime automation run one more on the run's channel. Every data carries
/// `event_id` (the `events` row) so a client can drop a message delivered twice.
pub fn messages_for(
    event_id: i64,
    topic: &str,
    kind: &str,
    payload: &Value,
    context: JobContext,
) -> Vec<RealtimeMessage> {
    let Some((job, id)) = job_of_topic(topic) else {
        return vec![];
    };
    let mut out = vec![];
    match job {
        JobKind::AutomationRun => {
            if let (Some(name), false) = (run_event_name(kind), context.run_realtime_off) {
                out.push(message(job_channel(job, id), name, event_id, payload));
            }
        }
        _ => out.push(message(job_channel(job, id), kind, event_id, payload)),
    }
    if job == JobKind::Batch
        && context.batch_of_realtime_run
        && matches!(kind, "batch.started" | "batch.progress")
    {
        let mut data = payload.clone();
        if let Value::Object(m) = &mut data {
            m.insert("run_id".into(), json!(id));
            m.insert("stage".into(), json!(kind));
        }
        out.push(message(
            job_channel(JobKind::AutomationRun, id),
            "automation.run.progress",
            event_id,
            &data,
        ));
    }
    out
}

fn message(channel: String, name: &str, event_id: i64, payload: &Value) -> RealtimeMessage {
    let mut data = match payload {
        Value::Object(m) => m.clone(),
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other.clone());
            m
        }
    };
    data.insert("event_id".into(), json!(event_id));
    RealtimeMessage {
        channel,
        name: name.to_string(),
        data: fit(Value::Object(data)),
    }
}

/// `data` if its JSON is at most [`MAX_DATA_BYTES`]; otherwise a summary of it: its
/// top-level numbers, booleans and strings of at most 200 bytes (ids, statuses,
/// counts), the nested objects and arrays dropped, `truncated: true` and
/// `original_bytes`. A client that needs the whole of it reads the job from the api.
pub fn fit(data: Value) -> Value {
    let size = json_len(&data);
    if size <= MAX_DATA_BYTES {
        return data;
    }
    let Value::Object(m) = data else {
        return json!({"truncated": true, "original_bytes": size});
    };
    let mut kept = Map::new();
    for (k, v) in m {
        let small = match &v {
            Value::String(s) => s.len() <= 200,
            Value::Number(_) | Value::Bool(_) | Value::Null => true,
            Value::Array(_) | Value::Object(_) => false,
        };
        if small && k.len() <= 100 {
            kept.insert(k, v);
        }
    }
    kept.insert("truncated".into(), json!(true));
    kept.insert("original_bytes".into(), json!(size));
    let summary = Value::Object(kept);
    if json_len(&summary) <= MAX_DATA_BYTES {
        summary
    } else {
        // Thousands of small fields: only the marker and the event's id are left.
        json!({"truncated": true, "original_bytes": size, "event_id": summary["event_id"]})
    }
}

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_job_topic_has_its_private_channel_and_others_have_none() {
        let p = json!({"audit_id": "a1"});
        let m = messages_for(7, "audit:a1", "audit.completed", &p, JobContext::default());
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].channel, "private-job-audit-a1");
        assert_eq!(m[0].name, "audit.completed");
        assert_eq!(m[0].data, json!({"audit_id": "a1", "event_id": 7}));
        let f = messages_for(
            8,
            "fetch-job:j1",
            "fetch_job.started",
            &p,
            JobContext::default(),
        );
        assert_eq!(f[0].channel, "private-job-fetch-job-j1");
        assert!(messages_for(9, "pii:x", "pii.erased", &p, JobContext::default()).is_empty());
        assert!(messages_for(9, "nonsense", "x", &p, JobContext::default()).is_empty());
        assert!(messages_for(9, "audit:a b", "x", &p, JobContext::default()).is_empty());
    }

    #[test]
    fn a_run_s_events_are_renamed_and_its_batch_progress_goes_to_the_run_channel() {
        let p = json!({"run_id": "r1"});
        let ctx = JobContext::default();
        let started = messages_for(1, "automation-run:r1", "automation/started", &p, ctx);
        assert_eq!(started[0].channel, "private-job-automation-run-r1");
        assert_eq!(started[0].name, "automation.run.started");
        let failed = messages_for(2, "automation-run:r1", "automation/failed", &p, ctx);
        assert_eq!(failed[0].name, "automation.run.failed");
        let off = JobContext {
            run_realtime_off: true,
            ..ctx
        };
        assert!(messages_for(3, "automation-run:r1", "automation/completed", &p, off).is_empty());

        let progress = json!({"batch_id": "r1", "counts": {"completed": 1}});
        let run = JobContext {
            batch_of_realtime_run: true,
            ..ctx
        };
        let m = messages_for(4, "batch:r1", "batch.progress", &progress, run);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].channel.as_str(), m[0].name.as_str()),
            ("private-job-batch-r1", "batch.progress")
        );
        assert_eq!(
            (m[1].channel.as_str(), m[1].name.as_str()),
            ("private-job-automation-run-r1", "automation.run.progress")
        );
        assert_eq!(m[1].data["run_id"], "r1");
        assert_eq!(m[1].data["stage"], "batch.progress");
        assert_eq!(m[1].data["counts"]["completed"], 1);
        // The batch's end is not the run's: only the batch channel hears it.
        assert_eq!(
            messages_for(5, "batch:r1", "batch.completed", &progress, run).len(),
            1
        );
        // A batch that is no run's: its own channel only.
        assert_eq!(
            messages_for(6, "batch:r1", "batch.progress", &progress, ctx).len(),
            1
        );
    }

    #[test]
    fn a_large_payload_is_summarised_under_the_limit() {
        let big = json!({
            "run_id": "r1", "status": "failed", "failed": 3,
            "error": "x".repeat(20_000),
            "summary": {"ignored": vec!["FICHE-1"; 2_000]},
        });
        let m = messages_for(
            11,
            "automation-run:r1",
            "automation/failed",
            &big,
            JobContext::default(),
        );
        let d = &m[0].data;
        assert!(serde_json::to_vec(d).unwrap().len() <= MAX_DATA_BYTES);
        assert_eq!(d["truncated"], true);
        assert_eq!(d["run_id"], "r1");
        assert_eq!(d["failed"], 3);
        assert_eq!(d["event_id"], 11);
        assert!(d.get("error").is_none() && d.get("summary").is_none());
        assert!(d["original_bytes"].as_u64().unwrap() > 20_000);
        let small = json!({"a": 1});
        assert_eq!(fit(small.clone()), small);
    }

    #[test]
    fn only_private_job_channels_of_known_kinds_are_accepted() {
        assert_eq!(
            parse_job_channel("private-job-audit-3f2c"),
            Ok((JobKind::Audit, "3f2c"))
        );
        assert_eq!(
            parse_job_channel("private-job-automation-run-r1"),
            Ok((JobKind::AutomationRun, "r1"))
        );
        assert_eq!(
            parse_job_channel("private-job-fetch-job-j1"),
            Ok((JobKind::FetchJob, "j1"))
        );
        for public in [
            "job-audit-1",
            "presence-job-audit-1",
            "private-encrypted-job-audit-1",
        ] {
            assert!(matches!(
                parse_job_channel(public),
                Err(ChannelError::NotPrivate(_))
            ));
        }
        for other in [
            "private-foobar",
            "private-job-user-1",
            "private-job-audit-",
            "private-job-audit",
            "private-job-audit-a b",
        ] {
            assert!(
                matches!(
                    parse_job_channel(other),
                    Err(ChannelError::NotAJobChannel(_))
                ),
                "{other}"
            );
        }
        assert!(valid_socket_id("1234.1234"));
        for bad in ["1234", "a.1", "1.", ".1", "1.2.3", ""] {
            assert!(!valid_socket_id(bad), "{bad}");
        }
    }
}
