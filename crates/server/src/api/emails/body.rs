//! Reading a send request's body into its typed request: within the route's size limit, nested at most
//! `limits::JSON_DEPTH` deep, fingerprinted for idempotency as it arrives, and parsed by the bounded readers
//! of `wire.rs`.
//!
//! A body of up to [`BUFFERED_BYTES`] (nearly every send) is collected and parsed from memory. A larger one
//! is parsed as it streams in, on a blocking thread, so a request the parser refuses (a 51st address, a
//! 101st email, nesting too deep) is answered as soon as the parser gets there, without parsing or keeping
//! the rest (see [`discard`]), and the body is never held whole next to what is parsed from it. What stays
//! in memory is what the email is made of. The one part that can be large is a JSON string (`html`, an
//! attachment's base64 `content`), which the parser holds whole while it reads it and which is then copied
//! (or decoded) once, so a request costs at most about twice its body.
//!
//! Large bodies are also few at once: at most [`crate::state::LARGE_SEND_BODIES_AT_ONCE`] requests of this
//! process parse a streamed body (and hold what it is made of until they are answered); the others wait
//! before reading theirs, so their bytes stay with the client. Legitimate large sends (a 40 MiB attachment)
//! therefore cost a bounded amount of memory however many arrive together.
//!
//! The fingerprint is the route and the exact bytes of the body, as `idempotency::fingerprint` computes it
//! for a body in memory: the same body replays, any other conflicts, on either path.

use std::io::{self, BufReader, Read};
use std::sync::Arc;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use futures::StreamExt;
use opensend_core::ErrorCode;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::limits;
use super::wire::{Refusal, RequestBody};
use crate::error::ApiError;
use crate::extract::{json_error, or_empty_object, unreadable_body};
use crate::idempotency::Fingerprint;

/// Bodies up to this size are buffered and parsed from memory; larger ones are parsed as they arrive.
pub const BUFFERED_BYTES: usize = 1024 * 1024;

/// A send request read from its body.
pub struct ReadBody<T> {
    pub request: T,
    /// The route and the exact bytes of the body, for `Idempotency-Key` replays.
    pub fingerprint: [u8; 32],
    /// For a body over [`BUFFERED_BYTES`], its place among the few parsed at once
    /// ([`crate::state::LARGE_SEND_BODIES_AT_ONCE`]): keep it until the request is answered.
    pub large_body: Option<OwnedSemaphorePermit>,
}

/// A send route: its name in the fingerprint, and its body limit.
pub struct Route {
    pub name: &'static str,
    pub limit: usize,
}

pub const SINGLE: Route = Route {
    name: "POST /emails",
    limit: limits::BODY_BYTES,
};

pub const BATCH: Route = Route {
    name: "POST /emails/batch",
    limit: limits::BATCH_BODY_BYTES,
};

/// Reads `body` as a `T` and fingerprints it. Over the limit: 413, before reading anything when the
/// declared `Content-Length` says so. Not JSON: 400. Over a count or nesting limit, or of the wrong shape:
/// 422. Nothing has been written when any of these is returned.
pub async fn read<T: RequestBody>(
    large_bodies: &Arc<Semaphore>,
    route: &'static Route,
    headers: &HeaderMap,
    body: Body,
) -> Result<ReadBody<T>, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > route.limit as u64) {
        return Err(too_large(route));
    }
    let mut intake = Intake::new(route);
    let mut chunks = body.into_data_stream();
    let mut buffered = Vec::new();
    let mut held = 0;
    // A body declared larger than the threshold goes straight to the streaming path.
    let stream_at_once = declared.is_some_and(|length| length > BUFFERED_BYTES as u64);
    while !stream_at_once && held <= BUFFERED_BYTES {
        match chunks.next().await {
            None => {
                let body = concatenate(buffered, held);
                let request = parse::<T, _>(
                    route,
                    serde_json::Deserializer::from_slice(or_empty_object(&body)),
                )?;
                return Ok(ReadBody {
                    request,
                    fingerprint: intake.fingerprint.finish(),
                    large_body: None,
                });
            }
            Some(Err(e)) => return Err(unreadable_body(e)),
            Some(Ok(chunk)) => {
                if let Err(refused) = intake.take(&chunk) {
                    discard(chunks, intake.left);
                    return Err(refused.answer(route));
                }
                held += chunk.len();
                buffered.push(chunk);
            }
        }
    }
    // Wait for a place before reading more: until then the rest of the body stays with the client.
    let large_body = large_bodies
        .clone()
        .acquire_owned()
        .await
        .map_err(ApiError::internal)?;
    let mut rest = BlockingBody {
        buffered: buffered.into_iter(),
        chunks,
        current: Bytes::new(),
        position: 0,
        intake,
        runtime: Handle::current(),
    };
    let (parsed, rest) = tokio::task::spawn_blocking(move || {
        let reader = BufReader::with_capacity(64 * 1024, &mut rest);
        let parsed = parse::<T, _>(route, serde_json::Deserializer::from_reader(reader));
        (parsed, rest)
    })
    .await
    .map_err(ApiError::internal)?;
    match parsed {
        Ok(request) => Ok(ReadBody {
            request,
            fingerprint: rest.intake.fingerprint.finish(),
            large_body: Some(large_body),
        }),
        Err(error) => {
            discard(rest.chunks, rest.intake.left);
            Err(error)
        }
    }
}

/// Reads what is left of a refused body, at most `left` bytes (what the route's limit still allows; none
/// once a body went over it), and drops it: nothing is parsed or kept. The answer goes out at once; this
/// only keeps the connection from being reset under a client that sends its whole body before reading the
/// answer (Python's `http.client`, under `requests` and the Resend SDK, does), which would otherwise get a
/// broken pipe instead of the 4xx.
fn discard(mut chunks: BodyDataStream, mut left: usize) {
    tokio::spawn(async move {
        while let Some(Ok(chunk)) = chunks.next().await {
            match left.checked_sub(chunk.len()) {
                Some(still) => left = still,
                None => break,
            }
        }
    });
}

/// The buffered chunks as one slice (a body of one chunk is not copied).
fn concatenate(chunks: Vec<Bytes>, length: usize) -> Bytes {
    if chunks.len() == 1 {
        return chunks.into_iter().next().unwrap_or_default();
    }
    let mut body = Vec::with_capacity(length);
    for chunk in chunks {
        body.extend_from_slice(&chunk);
    }
    Bytes::from(body)
}

/// Parses one document, which must be followed by nothing but whitespace.
fn parse<'de, T: RequestBody, R: serde_json::de::Read<'de>>(
    route: &Route,
    mut de: serde_json::Deserializer<R>,
) -> Result<T, ApiError> {
    let refusal = Refusal::default();
    let read = T::read(&mut de, &refusal).and_then(|read| de.end().map(|()| read));
    match read {
        Ok(request) => request,
        Err(error) => Err(refusal.take().unwrap_or_else(|| parse_error(route, error))),
    }
}

/// A parse failure that is not a refused count: the body was over a limit, broke off, or is not JSON.
fn parse_error(route: &Route, error: serde_json::Error) -> ApiError {
    if error.is_io() {
        let error = io::Error::from(error);
        return match error.get_ref().and_then(|e| e.downcast_ref::<Refused>()) {
            Some(refused) => refused.answer(route),
            None => unreadable_body(error),
        };
    }
    json_error(error)
}

/// Why reading stopped before the parser did.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("the body is larger than the route's limit")]
    TooLarge,
    #[error("the JSON nests deeper than the limit")]
    TooDeep,
}

impl Refused {
    fn answer(&self, route: &Route) -> ApiError {
        match self {
            Refused::TooLarge => too_large(route),
            Refused::TooDeep => ApiError::validation(format!(
                "The JSON nests deeper than {} levels.",
                limits::JSON_DEPTH
            )),
        }
    }
}

fn too_large(route: &Route) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "Request body is larger than {} MiB, the limit of `{}`.",
            route.limit / (1024 * 1024),
            route.name
        ),
    )
}

/// What every chunk of a body goes through on either path: the size limit, the nesting limit, the
/// fingerprint.
struct Intake {
    left: usize,
    nesting: Nesting,
    fingerprint: Fingerprint,
}

impl Intake {
    fn new(route: &Route) -> Self {
        Self {
            left: route.limit,
            nesting: Nesting::default(),
            fingerprint: Fingerprint::new(route.name),
        }
    }

    fn take(&mut self, chunk: &[u8]) -> Result<(), Refused> {
        self.left = match self.left.checked_sub(chunk.len()) {
            Some(left) => left,
            None => {
                self.left = 0;
                return Err(Refused::TooLarge);
            }
        };
        self.nesting.feed(chunk)?;
        self.fingerprint.update(chunk);
        Ok(())
    }
}

/// How deeply the JSON read so far nests, counted byte by byte outside strings. Checked before parsing
/// because a skipped value (`IgnoredAny`) is not held to serde_json's own depth limit, and its skipping
/// keeps one byte per level: without this, one deep unknown field could hold as much memory as the body.
#[derive(Debug, Default)]
struct Nesting {
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Nesting {
    fn feed(&mut self, chunk: &[u8]) -> Result<(), Refused> {
        let mut at = 0;
        while at < chunk.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    at += 1;
                    continue;
                }
                // Most of a send request is inside strings (the bodies, base64): jump to what ends one.
                match chunk[at..].iter().position(|&b| b == b'"' || b == b'\\') {
                    None => return Ok(()),
                    Some(offset) => {
                        at += offset;
                        if chunk[at] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                        }
                    }
                }
            } else {
                match chunk[at] {
                    b'"' => self.in_string = true,
                    b'[' | b'{' => {
                        self.depth += 1;
                        if self.depth > limits::JSON_DEPTH {
                            return Err(Refused::TooDeep);
                        }
                    }
                    b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                    _ => {}
                }
            }
            at += 1;
        }
        Ok(())
    }
}

/// The rest of a body as a blocking `Read`, for the parser on a blocking thread: first the chunks already
/// buffered, then each further chunk waited for on the runtime as the parser needs it. A reader the parser
/// drops early leaves the rest of the body unread.
struct BlockingBody {
    buffered: std::vec::IntoIter<Bytes>,
    chunks: BodyDataStream,
    current: Bytes,
    position: usize,
    intake: Intake,
    runtime: Handle,
}

impl Read for BlockingBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.current.len() {
            let next = match self.buffered.next() {
                Some(chunk) => chunk,
                None => match self.runtime.block_on(self.chunks.next()) {
                    None => return Ok(0),
                    Some(Err(e)) => return Err(io::Error::other(e)),
                    Some(Ok(chunk)) => {
                        self.intake.take(&chunk).map_err(io::Error::other)?;
                        chunk
                    }
                },
            };
            self.current = next;
            self.position = 0;
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_of(json: &[u8], chunk: usize) -> Result<(), Refused> {
        let mut nesting = Nesting::default();
        json.chunks(chunk).try_for_each(|c| nesting.feed(c))
    }

    #[test]
    fn nesting_is_counted_outside_strings_across_chunks() {
        let deep = |levels: usize| {
            let mut json = "[".repeat(levels);
            json.push_str(&"]".repeat(levels));
            json.into_bytes()
        };
        for chunk in [1, 3, 1024] {
            assert!(depth_of(&deep(limits::JSON_DEPTH), chunk).is_ok());
            assert!(matches!(
                depth_of(&deep(limits::JSON_DEPTH + 1), chunk),
                Err(Refused::TooDeep)
            ));
            // Brackets inside strings, escaped quotes included, do not count.
            let mut quoted = b"{\"a\": \"\\\"".to_vec();
            quoted.extend("[{".repeat(limits::JSON_DEPTH).bytes());
            quoted.extend_from_slice(b"\\\\\", \"b\": [[]]}");
            assert!(depth_of(&quoted, chunk).is_ok(), "chunk {chunk}");
            // Siblings do not add up.
            let wide = "[".to_owned() + &"[[]],".repeat(1000) + "[]]";
            assert!(depth_of(wide.as_bytes(), chunk).is_ok());
        }
    }
}
