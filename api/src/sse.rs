//! Reading a Server-Sent Events byte stream, as clients of our `/events` endpoints do (the
//! demo, the bench, the tests). Bytes are buffered until a frame is complete, so a
//! multi-byte character split across network chunks is decoded whole.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `id:` field.
    pub id: Option<String>,
    /// `event:` field (absent means the default `message` type).
    pub event: Option<String>,
    /// `data:` lines joined by newlines.
    pub data: String,
}

/// Incremental decoder: feed it chunks, get the events they complete.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
}

impl SseDecoder {
    /// Adds `bytes`; returns the events whose frames they complete, in order. Frames
    /// without a `data:` line (keep-alive comments) dispatch nothing, as in browsers.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        // `\r\n` line ends become `\n`; a CR byte never occurs inside a UTF-8 sequence.
        self.buf
            .extend(bytes.iter().copied().filter(|b| *b != b'\r'));
        let mut out = Vec::new();
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
            out.extend(parse_frame(&String::from_utf8_lossy(&frame)));
        }
        out
    }
}

fn parse_frame(frame: &str) -> Option<SseEvent> {
    let mut ev = SseEvent::default();
    let mut has_data = false;
    for line in frame.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => ev.id = Some(value.to_string()),
            "event" => ev.event = Some(value.to_string()),
            "data" => {
                if has_data {
                    ev.data.push('\n');
                }
                ev.data.push_str(value);
                has_data = true;
            }
            _ => {}
        }
    }
    has_data.then_some(ev)
}

#[cfg(test)]
mod tests {
    use super::{SseDecoder, SseEvent};

    fn kinds(events: Vec<SseEvent>) -> Vec<String> {
        events.into_iter().filter_map(|e| e.event).collect()
    }

    #[test]
    fn sse_event_types_are_read_across_chunk_boundaries() {
        let mut sse = SseDecoder::default();
        assert!(sse.push(b"id: 1\nevent: audit.started\nda").is_empty());
        assert_eq!(
            kinds(sse.push(
                b"ta: {}\n\n: keep-alive\n\nid: 9\r\nevent: audit.completed\r\ndata: {}\r\n\r\n"
            )),
            vec!["audit.started".to_string(), "audit.completed".to_string()]
        );
    }

    #[test]
    fn fields_multi_line_data_and_split_characters_are_decoded() {
        let mut sse = SseDecoder::default();
        let frame =
            "id: 7\nevent: audit.step.completed\ndata: {\"name\":\"Découverte\"}\ndata: x\n\n";
        let bytes = frame.as_bytes();
        // Split inside the two bytes of "é".
        let cut = frame.find('é').expect("é") + 1;
        assert!(sse.push(&bytes[..cut]).is_empty());
        assert_eq!(
            sse.push(&bytes[cut..]),
            vec![SseEvent {
                id: Some("7".into()),
                event: Some("audit.step.completed".into()),
                data: "{\"name\":\"Découverte\"}\nx".into(),
            }]
        );
    }
}
