# shellcheck shell=bash
# shellcheck disable=SC2154 # RUN, PYTHON, STEPS, auth, API_PORTS... are chaos.sh's
# The figures of temporal-dev/chaos.sh (sourced by it; it needs its sql, tctl, sse_events,
# RUN, auth and API_PORTS): each `target` line compares a measured value with its target
# and records a miss in FAILS; `info` lines are figures without a target.

FAILS=()
target() { # NAME ACTUAL EXPECTED
  if [[ "$2" == "$3" ]]; then
    printf '  %-52s %s\n' "$1" "$2"
  else
    printf '  %-52s %s   <-- target %s\n' "$1" "$2" "$3"
    FAILS+=("$1: $2 (target $3)")
  fi
}
info() { printf '  %-52s %s\n' "$1" "$2"; }

machine() {
  local cpu
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)
  printf 'machine: %s, %s cores (%s), %s MB RAM, load average %s\n' "$(uname -sr)" "$(nproc)" \
    "${cpu:-?}" "$(($(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo) / 1024))" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# Audits of a batch: status counts, reasons, step rows, terminal events, stream replays.
report_batch() { # BATCH_ID EXPECT(completed|failed)
  local b=$1 expect=$2 q
  q="select count(*) filter (where status = 'completed'), count(*) filter (where status = 'failed'),
       count(*) filter (where status = 'cancelled'),
       count(*) filter (where status not in ('completed', 'failed', 'cancelled'))
     from audits where batch_id = '$b'"
  local accepted completed failed cancelled open
  accepted=$(sql "select total from audit_batches where id = '$b'")
  IFS=$'\t' read -r completed failed cancelled open <<<"$(sql "$q")"
  info "audits accepted" "$accepted"
  if [[ "$expect" == completed ]]; then
    target "completed" "$completed" "$accepted"
    target "failed" "$failed" 0
  else
    target "completed" "$completed" 0
    target "failed" "$failed" "$accepted"
  fi
  sql "select '      ' || count(*) || ' × ' || coalesce(left(error, 240), '(no reason)') from audits
       where batch_id = '$b' and status = 'failed' group by error order by count(*) desc"
  target "cancelled" "$cancelled" 0
  target "still open (audit rows not ended)" "$open" 0
  target "lost (accepted, without an ended audit)" "$(sql "select count(*) from audit_batch_items i where i.batch_id = '$b' and (i.status not in ('completed', 'failed', 'cancelled') or not exists (select 1 from audits a where a.id = i.audit_id and a.status in ('completed', 'failed', 'cancelled')))")" 0
  target "batch status" "$(sql "select status from audit_batches where id = '$b'")" \
    "$([[ "$expect" == completed ]] && echo completed || echo partial)"
  if [[ "$expect" == completed ]]; then
    target "step rows missing (completed audits)" "$(sql "select coalesce(sum(a.steps_total - (select count(*) from audit_step_results s where s.audit_id = a.id)), 0) from audits a where a.batch_id = '$b' and a.status = 'completed'")" 0
    target "audits with steps_done != steps_total ($STEPS)" "$(sql "select count(*) from audits where batch_id = '$b' and status = 'completed' and (steps_done <> steps_total or steps_total <> $STEPS)")" 0
  fi
  target "duplicate step rows" "$(sql "select count(*) from (select 1 from audit_step_results s join audits a on a.id = s.audit_id where a.batch_id = '$b' group by s.audit_id, s.position having count(*) > 1) d")" 0
  target "audits with more than one terminal event" "$(sql "select count(*) from (select a.id from audits a join events e on e.topic = 'audit:' || a.id where a.batch_id = '$b' and e.type in ('audit.completed', 'audit.failed', 'audit.cancelled') group by a.id having count(*) > 1) d")" 0
  target "ended audits without a terminal event" "$(sql "select count(*) from audits a where a.batch_id = '$b' and a.status in ('completed', 'failed', 'cancelled') and not exists (select 1 from events e where e.topic = 'audit:' || a.id and e.type in ('audit.completed', 'audit.failed', 'audit.cancelled'))")" 0
  target "terminal events whose type disagrees with the row" "$(sql "select count(*) from audits a join events e on e.topic = 'audit:' || a.id and e.type in ('audit.completed', 'audit.failed', 'audit.cancelled') where a.batch_id = '$b' and e.type <> 'audit.' || a.status")" 0
  target "batch.progress events (one per audit)" "$(sql "select count(*) from events where topic = 'batch:$b' and type = 'batch.progress'")" "$accepted"
  target "batch terminal events" "$(sql "select count(*) from events where topic = 'batch:$b' and type in ('batch.completed', 'batch.failed', 'batch.cancelled')")" 1
  target "workflows still running in Temporal" "$(tctl workflow count --query 'ExecutionStatus="Running"' 2>/dev/null | sed -n 's/^Total: *//p')" 0
  # Every audit's stream replayed from the start (on replica B) equals its events rows.
  local ids aid missing=0 extra=0 disorder=0 got want
  ids=$(sql "select id from audits where batch_id = '$b' order by created_at")
  for aid in $ids; do
    curl -sS -N -m 20 -o "$RUN/replay.raw" "${auth[@]}" -H 'Accept: text/event-stream' \
      "http://127.0.0.1:${API_PORTS[1]}/api/audits/$aid/events" 2>/dev/null || true
    got=$(sse_events "$RUN/replay.raw" | cut -f1)
    want=$(sql "select id from events where topic = 'audit:$aid' order by id")
    missing=$((missing + $(comm -23 <(sort <<<"$want") <(sort -u <<<"$got") | grep -c . || true)))
    extra=$((extra + $(grep -c . <<<"$got" || true) - $(sort -u <<<"$got" | grep -c . || true)))
    extra=$((extra + $(comm -13 <(sort <<<"$want") <(sort -u <<<"$got") | grep -c . || true)))
    disorder=$((disorder + $(awk 'NR > 1 && $1 + 0 <= p { n++ } { p = $1 + 0 } END { print n + 0 }' <<<"$got")))
  done
  target "audit streams replayed: events missed" "$missing" 0
  target "audit streams replayed: events duplicated or unknown" "$extra" 0
  target "audit streams replayed: events out of order" "$disorder" 0
}

# per_recording FILE KEY : how many recordings got 1, 2, ... requests in a /_sim/stats map.
per_recording() {
  "$PYTHON" - "$1" "$2" <<'PY'
import collections, json, sys
counts = collections.Counter(json.load(open(sys.argv[1]))[sys.argv[2]].values())
print(", ".join(f"{k} → {n} recording(s)" for k, n in sorted(counts.items())) or "none")
PY
}
# twice_transcribed STATS BATCH : each recording answered more than once, with why from
# the history of its transcription activity (in its audit's workflow, or in the
# `transcribe:` child of older runs): a retried activity's started event carries its
# attempt and the previous attempt's failure (a heartbeat timeout: the worker was killed).
twice_transcribed() {
  local rec aid
  for rec in $("$PYTHON" -c 'import json,sys; print(" ".join(k for k, v in json.load(open(sys.argv[1]))["stt_transcripts_by_recording"].items() if v > 1))' "$1"); do
    aid=$(sql "select a.id from audits a join recordings r on r.fiche_id = a.fiche_id where r.recording_id = '$rec' and a.batch_id = '$2' limit 1")
    { tctl workflow show -w "transcribe:$rec" -o json 2>/dev/null || tctl workflow show -w "audit:$aid" -o json 2>/dev/null; } >"$RUN/history.json" || true
    "$PYTHON" - "$rec" "$RUN/history.json" <<'PY' || true
import base64, json, sys
rec, path = sys.argv[1], sys.argv[2]
try:
    events = json.load(open(path))["events"]
except (ValueError, KeyError):
    print("    %s: no history found" % rec)
    sys.exit(0)
mine, found = set(), []
for e in events:
    a = e.get("activityTaskScheduledEventAttributes")
    if a and a["activityType"]["name"] == "transcription.transcribe":
        for p in (a.get("input") or {}).get("payloads", []):
            if rec in base64.b64decode(p.get("data", "")).decode("utf-8", "replace"):
                mine.add(e["eventId"])
    a = e.get("activityTaskStartedEventAttributes")
    if a and a.get("scheduledEventId") in mine:
        failure = (a.get("lastFailure") or {}).get("message", "-")
        found.append("transcription.transcribe ran %s attempt(s), the last after: %s" % (a.get("attempt", 1), failure))
print("    %s: %s" % (rec, "; ".join(found) or "its transcription activity was not retried"))
PY
  done
}
