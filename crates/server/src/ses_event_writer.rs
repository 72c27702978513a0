//! Writes the SES events of concurrent `/events/ses` requests in batches: a few writers each take what has
//! queued up (up to [`EVENT_BATCH`]) and apply it in one transaction
//! ([`opensend_store::repos::provider_events::ProviderEvents::apply_many`]), each event in a savepoint of its
//! own, so the database commits once per batch instead of once per notification. A request is answered
//! only after its batch committed; when a batch's transaction fails as a whole, its events are applied one
//! by one, so one event cannot fail the others.

use opensend_store::repos::provider_events::{ApplyOutcome, ProviderEvent};
use opensend_store::{Store, StoreError};
use tokio::sync::{Mutex, mpsc, oneshot};

/// Most events one transaction applies.
pub const EVENT_BATCH: usize = 64;
/// Transactions applying events at once (each its own batch).
const EVENT_WRITERS: usize = 4;

type PendingEvent = (
    ProviderEvent,
    oneshot::Sender<Result<ApplyOutcome, StoreError>>,
);

/// Applies the events of concurrent `/events/ses` requests in batches (see the module docs). The writers
/// start with the first event.
pub struct SesEventWriter {
    store: Store,
    queue: std::sync::OnceLock<mpsc::Sender<PendingEvent>>,
}

impl SesEventWriter {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            queue: std::sync::OnceLock::new(),
        }
    }

    /// Applies `event` once, with the others queued meanwhile, and returns what it came to.
    pub async fn apply(&self, event: ProviderEvent) -> Result<ApplyOutcome, StoreError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, received) = mpsc::channel(EVENT_BATCH * EVENT_WRITERS);
            let received = std::sync::Arc::new(Mutex::new(received));
            for _ in 0..EVENT_WRITERS {
                tokio::spawn(write_events(self.store.clone(), received.clone()));
            }
            sender
        });
        let (done, result) = oneshot::channel();
        match queue.send((event, done)).await {
            Ok(()) => match result.await {
                Ok(result) => result,
                // The writer went away mid-batch (its transaction, not committed, is rolled back): a
                // 5xx, so SNS delivers the event again. A report applied before is recognised as such.
                Err(_) => Err(StoreError::Database(opensend_store::DbErr::Custom(
                    "the SES event writer stopped before applying the event".to_owned(),
                ))),
            },
            Err(mpsc::error::SendError((event, _))) => {
                self.store.provider_events().apply(event).await
            }
        }
    }
}

/// One writer: takes what has queued up, applies it in one transaction, answers each request.
async fn write_events(store: Store, received: std::sync::Arc<Mutex<mpsc::Receiver<PendingEvent>>>) {
    let mut batch = Vec::with_capacity(EVENT_BATCH);
    loop {
        let taken = received
            .lock()
            .await
            .recv_many(&mut batch, EVENT_BATCH)
            .await;
        if taken == 0 {
            return;
        }
        let (events, waiting): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        match store.provider_events().apply_many(events.clone()).await {
            Ok(results) => {
                for (result, waiting) in results.into_iter().zip(waiting) {
                    let _ = waiting.send(result);
                }
            }
            Err(e) => {
                // Nothing of the batch was written: each on its own, so one cannot fail the others.
                tracing::warn!(error = %e, count = events.len(), "applying a batch of SES events failed; applying them one by one");
                for (event, waiting) in events.into_iter().zip(waiting) {
                    let _ = waiting.send(store.provider_events().apply(event).await);
                }
            }
        }
    }
}
