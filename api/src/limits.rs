//! Request bodies are capped (`API_MAX_BODY_BYTES`): a declared length past the cap is
//! refused without handing anything to the route, a chunked body as soon as it passes
//! the cap. Both get 413 with the JSON error body. A body up to [`DRAIN_FACTOR`] times
//! the cap is read (and dropped) first, so the client has finished sending when the
//! answer comes and the connection stays usable; a larger one is answered at once and
//! its connection closed.

use futures::StreamExt;
use poem::http::StatusCode;
use poem::web::headers::{ContentLength, HeaderMapExt};
use poem::{Body, Endpoint, IntoResponse, Request, Response};

/// A chunked body past the cap is still read (and dropped) up to this many times the cap
/// before the 413 is answered.
const DRAIN_FACTOR: usize = 8;

fn too_large(max: usize) -> poem::Error {
    poem::Error::from_string(
        format!("request body larger than {max} bytes (API_MAX_BODY_BYTES)"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
}

/// Calls `next` with the body of `req` if it is at most `max` bytes, else answers 413.
pub async fn limit_body<E: Endpoint>(
    next: E,
    mut req: Request,
    max: usize,
) -> poem::Result<Response> {
    match req.headers().typed_get::<ContentLength>() {
        Some(ContentLength(len)) => {
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > max {
                if len <= max.saturating_mul(DRAIN_FACTOR) {
                    drain(req.take_body().into_bytes_stream(), 0, max).await;
                }
                return Err(too_large(max));
            }
        }
        None => {
            // No declared length (chunked): read at most `max` bytes, then hand the
            // buffered body on.
            let mut stream = req.take_body().into_bytes_stream();
            let mut buffered = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| poem::Error::new(e, StatusCode::BAD_REQUEST))?;
                if buffered.len() + chunk.len() > max {
                    drain(stream, buffered.len() + chunk.len(), max).await;
                    return Err(too_large(max));
                }
                buffered.extend_from_slice(&chunk);
            }
            req.set_body(Body::from_vec(buffered));
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// Reads (and drops) what the client is still sending, `already` bytes in, up to
/// [`DRAIN_FACTOR`] times `max`, so it has finished sending when the 413 comes:
/// answering and closing mid-upload resets the connection under the client, which then
/// often loses the answer (or reuses a pooled connection the server is closing). Past
/// the bound the connection just closes.
async fn drain<S, B, E>(stream: S, already: usize, max: usize)
where
    S: futures::Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    let mut stream = std::pin::pin!(stream);
    let mut drained = already;
    while drained <= max.saturating_mul(DRAIN_FACTOR) {
        match stream.next().await {
            Some(Ok(more)) => drained += more.as_ref().len(),
            _ => break,
        }
    }
}
