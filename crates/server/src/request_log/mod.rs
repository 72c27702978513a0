//! The request log behind `GET /logs`: every API request made with a key (an unauthenticated request has no
//! organization to be logged for) is recorded with its method, path, status, user agent, and request and
//! response bodies, each kept up to [`BODY_LIMIT`] and redacted ([`redact`]) before it is queued.
//!
//! Recording never slows or fails a request: bodies are copied as they stream through (nothing is
//! buffered for the log's sake), and the entry goes to a bounded queue ([`QUEUE_ENTRIES`] entries,
//! [`QUEUE_BYTES`] bytes); when it is full the entry is dropped and counted ([`RequestLog::dropped`], and a
//! warning at each power of two). One writer task drains the queue with multi-row inserts of up to
//! [`WRITE_BATCH`] rows. On graceful shutdown ([`RequestLog::flush`], from `Application::wait`) what is queued
//! is written before the database closes.

pub mod redact;

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{SubsecRound, Utc};
use opensend_store::Store;
use opensend_store::repos::NewRequestLog;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Most bytes of each body kept; the rest is cut.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Most entries waiting to be written.
pub const QUEUE_ENTRIES: usize = 1024;
/// Most bytes of entries waiting to be written.
pub const QUEUE_BYTES: usize = 16 * 1024 * 1024;
/// Most rows one insert writes.
pub const WRITE_BATCH: usize = 256;
/// Longest user agent kept, in characters.
const USER_AGENT_CHARS: usize = 512;
/// How long shutdown waits for the queue to be written before giving up on it.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

/// The methods Resend's log schema knows; others (`HEAD`) are not recorded, so every entry fits it.
const LOGGED_METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
];

/// Where authentication leaves who called (organization, key), for the log middleware that runs around
/// it. Put in the request's extensions by [`record`], filled by `auth::authenticate`.
#[derive(Clone, Debug, Default)]
pub struct CallerSlot(Arc<OnceLock<(Uuid, Uuid)>>);

impl CallerSlot {
    pub fn set(&self, organization_id: Uuid, key_id: Uuid) {
        let _ = self.0.set((organization_id, key_id));
    }
}

/// The queue and its writer (see the module docs). One per process.
pub struct RequestLog {
    sender: mpsc::Sender<NewRequestLog>,
    /// Taken by [`RequestLog::start`].
    waiting: Mutex<Option<(mpsc::Receiver<NewRequestLog>, watch::Receiver<bool>)>>,
    queued_bytes: AtomicUsize,
    dropped: AtomicU64,
    stop: watch::Sender<bool>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Default for RequestLog {
    fn default() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_ENTRIES);
        let (stop, stopped) = watch::channel(false);
        Self {
            sender,
            waiting: Mutex::new(Some((receiver, stopped))),
            queued_bytes: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            stop,
            writer: Mutex::new(None),
        }
    }
}

impl RequestLog {
    /// Starts the writer (once; later calls do nothing).
    pub fn start(self: &Arc<Self>, store: Store) {
        let Some((receiver, stopped)) = lock(&self.waiting).take() else {
            return;
        };
        let handle = tokio::spawn(write(self.clone(), store, receiver, stopped));
        *lock(&self.writer) = Some(handle);
    }

    /// Entries dropped because the queue was full, since the process started.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes what is queued and stops the writer. Entries queued after this are not written.
    pub async fn flush(&self) {
        let _ = self.stop.send(true);
        let writer = lock(&self.writer).take();
        if let Some(writer) = writer
            && tokio::time::timeout(FLUSH_WAIT, writer).await.is_err()
        {
            tracing::warn!("the request log was not written within {FLUSH_WAIT:?} of shutdown");
        }
    }

    /// Queues `entry` for the writer, or drops (and counts) it when the queue is full; never waits.
    pub fn queue(&self, entry: NewRequestLog) {
        let size = entry_size(&entry);
        let before = self.queued_bytes.fetch_add(size, Ordering::Relaxed);
        let fits = before + size <= QUEUE_BYTES;
        if fits && self.sender.try_send(entry).is_ok() {
            return;
        }
        self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if dropped.is_power_of_two() {
            tracing::warn!(
                dropped,
                "request log queue full: entries are being dropped (the database is not keeping up)"
            );
        }
    }
}

/// A poisoned lock still holds consistent data here (plain values set in one step).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn entry_size(entry: &NewRequestLog) -> usize {
    std::mem::size_of::<NewRequestLog>()
        + entry.endpoint.len()
        + entry.method.len()
        + entry.user_agent.as_ref().map_or(0, String::len)
        + entry.request_body.as_ref().map_or(0, String::len)
        + entry.response_body.as_ref().map_or(0, String::len)
}

/// The writer: batches of what has queued up, until told to stop; then what is left.
async fn write(
    log: Arc<RequestLog>,
    store: Store,
    mut receiver: mpsc::Receiver<NewRequestLog>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    loop {
        tokio::select! {
            taken = receiver.recv_many(&mut batch, WRITE_BATCH) => {
                if taken == 0 {
                    return;
                }
                write_batch(&log, &store, &mut batch).await;
            }
            _ = stopped.changed() => break,
        }
    }
    loop {
        while batch.len() < WRITE_BATCH {
            match receiver.try_recv() {
                Ok(entry) => batch.push(entry),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            return;
        }
        write_batch(&log, &store, &mut batch).await;
    }
}

async fn write_batch(log: &RequestLog, store: &Store, batch: &mut Vec<NewRequestLog>) {
    let size: usize = batch.iter().map(entry_size).sum();
    let rows = batch.len();
    let result = store
        .request_logs()
        .insert_many(std::mem::take(batch))
        .await;
    log.queued_bytes.fetch_sub(size, Ordering::Relaxed);
    if let Err(e) = result {
        tracing::warn!(error = %e, rows, "could not write request log entries; they are lost");
    }
}

/// The middleware: records the request once its response body has been sent (or abandoned).
pub async fn record(
    State(log): State<Arc<RequestLog>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !LOGGED_METHODS.contains(request.method()) {
        return next.run(request).await;
    }
    let caller = CallerSlot::default();
    request.extensions_mut().insert(caller.clone());
    let method = request.method().as_str().to_owned();
    let endpoint = request.uri().path().to_owned();
    let user_agent = user_agent(request.headers());
    let created_at = Utc::now().trunc_subsecs(6);
    let request_capture = Arc::new(Mutex::new(Capture::default()));
    let request = request.map(|body| Body::new(Tee::new(body, request_capture.clone(), None)));
    let response = next.run(request).await;
    let Some(&(organization_id, api_key_id)) = caller.0.get() else {
        return response;
    };
    let pending = Pending {
        log,
        request_capture,
        entry: NewRequestLog {
            id: Uuid::now_v7(),
            organization_id,
            api_key_id: Some(api_key_id),
            method,
            endpoint,
            response_status: i32::from(response.status().as_u16()),
            user_agent,
            request_body: None,
            response_body: None,
            created_at,
        },
    };
    response.map(|body| Body::new(Tee::new(body, Arc::default(), Some(pending))))
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(USER_AGENT)?.to_str().ok()?;
    Some(value.chars().take(USER_AGENT_CHARS).collect())
}

/// The first [`BODY_LIMIT`] bytes of a body, and whether there was more.
#[derive(Debug, Default)]
struct Capture {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Capture {
    fn push(&mut self, data: &Bytes) {
        let room = BODY_LIMIT.saturating_sub(self.bytes.len());
        if data.len() > room {
            self.bytes.extend_from_slice(&data[..room]);
            self.truncated = true;
        } else {
            self.bytes.extend_from_slice(data);
        }
    }

    /// What is stored: redacted JSON text; a body that is not whole JSON becomes a JSON string of its
    /// (redacted) text.
    fn stored(&self) -> Option<String> {
        if self.bytes.is_empty() {
            return None;
        }
        let parsed = match self.truncated {
            false => serde_json::from_slice::<Value>(&self.bytes).ok(),
            true => None,
        };
        let value = match parsed {
            Some(mut value) => {
                redact::redact_json(&mut value);
                value
            }
            None => Value::String(redact::redact_partial_json(&String::from_utf8_lossy(
                &self.bytes,
            ))),
        };
        Some(value.to_string())
    }
}

/// An entry waiting for its response body to be sent.
struct Pending {
    log: Arc<RequestLog>,
    request_capture: Arc<Mutex<Capture>>,
    entry: NewRequestLog,
}

/// A body passed through unchanged while its first bytes are copied; the response's also queues the
/// entry when it is dropped (sent in full, or abandoned by the client).
struct Tee {
    inner: Body,
    capture: Arc<Mutex<Capture>>,
    pending: Option<Pending>,
}

impl Tee {
    fn new(inner: Body, capture: Arc<Mutex<Capture>>, pending: Option<Pending>) -> Self {
        Self {
            inner,
            capture,
            pending,
        }
    }
}

impl http_body::Body for Tee {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            lock(&this.capture).push(data);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        if let Some(mut pending) = self.pending.take() {
            pending.entry.request_body = lock(&pending.request_capture).stored();
            pending.entry.response_body = lock(&self.capture).stored();
            pending.log.queue(pending.entry);
        }
    }
}
