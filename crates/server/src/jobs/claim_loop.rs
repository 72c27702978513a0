//! The one loop every background job runs: claim due work under a lease, process it with bounded
//! concurrency, sleep until more is due.
//!
//! A job says what its work is ([`LeasedWork`]: how to claim, how to process one item, when the next is due);
//! [`ClaimLoop`] does the rest the same way for all of them:
//!
//! - **Leases.** Claims go through the store, which leases each item to this loop's owner name
//!   ([`worker_name`]) for a while. Any number of loops in any number of processes share the work; an item
//!   whose owner died comes back when its lease runs out.
//! - **Continuous runs** ([`ClaimLoop::run`], the `serve`/`worker` processes): at most `concurrency` items in
//!   flight; while work is due the loop claims again as slots free up (in batches of `refill_at`), and when
//!   none is due it sleeps until the next item is due, a wake-up from this process, or the poll interval
//!   (±10 %, so many workers do not poll in step). Claims run beside the items in flight, never in their way;
//!   a job may claim up to `ahead` items beyond its free slots, so the next claim is already back when slots
//!   free up (claim-ahead: the slots do not stand idle for a claim transaction's round trips).
//! - **Rounds** ([`ClaimLoop::run_rounds`], the `/jobs/{name}` route): rounds of at most `concurrency` items,
//!   each claimed and processed at once, so no claimed item waits in line while its lease runs out; no
//!   round starts after [`ROUNDS_FOR`].

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use opensend_store::StoreError;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

/// A job run through [`ClaimLoop::run_rounds`] starts no new round after this long.
pub const ROUNDS_FOR: Duration = Duration::from_secs(5);
/// Shortest idle sleep, so an item due "now" that another process holds does not spin the loop.
const MIN_IDLE_SLEEP: Duration = Duration::from_millis(5);

/// How a loop paces itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Items in flight at once.
    pub concurrency: usize,
    /// While work is due, claim again once this many slots are free (batched claims), or [`Pace::gather`]
    /// after the first one frees up, whichever comes first.
    pub refill_at: usize,
    pub gather: Duration,
    /// Longest idle sleep: the bound on how late work queued by another process is noticed.
    pub poll_interval: Duration,
    /// A finished item can make held-back work claimable (per-endpoint caps): claim again after each one.
    pub reclaim_on_completion: bool,
    /// Items claimed ahead, beyond the free slots: the next claim runs while the current items are processed,
    /// and a slot that frees up starts a claimed item at once instead of waiting for a claim. Their leases
    /// run while they wait, so this stays small next to what the slots get through within a lease.
    pub ahead: usize,
}

impl Pace {
    /// One item at a time refills; the usual shape for work whose claims are cheap.
    pub fn new(concurrency: usize, poll_interval: Duration) -> Self {
        Self {
            concurrency: concurrency.max(1),
            refill_at: 1,
            gather: Duration::ZERO,
            poll_interval,
            reclaim_on_completion: false,
            ahead: 0,
        }
    }
}

/// What one background job does; [`ClaimLoop`] runs it.
pub trait LeasedWork: Send + Sync + 'static {
    /// One claimed piece of work.
    type Item: Send + 'static;

    /// Short name for logs and owner names (`delivery`, `webhooks`…).
    fn kind(&self) -> &'static str;

    fn pace(&self) -> Pace;

    /// Leases up to `limit` due items to `owner`.
    fn claim(
        &self,
        owner: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Self::Item>, StoreError>> + Send;

    /// Does the work of one item and records its outcome (only while `owner` still holds its lease).
    /// Failures are the item's own business: logged and retried through its lease, never returned.
    fn process(&self, owner: &str, item: Self::Item) -> impl Future<Output = ()> + Send;

    /// When the next item falls due, if the job can tell; `None` sleeps the poll interval.
    fn next_due(&self) -> impl Future<Output = Option<DateTime<Utc>>> + Send {
        async { None }
    }

    /// Rung by this process when it queued work, so the loop starts at once instead of at its next poll.
    fn wakeup(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// Runs a [`LeasedWork`] under a name of its own.
pub struct ClaimLoop<W: LeasedWork> {
    work: Arc<W>,
    owner: String,
}

impl<W: LeasedWork> ClaimLoop<W> {
    pub fn new(work: W) -> Self {
        let owner = worker_name(work.kind());
        Self {
            work: Arc::new(work),
            owner,
        }
    }

    /// The name leases are taken under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn work(&self) -> &W {
        &self.work
    }

    /// Runs until `stop` turns true, then lets the items in flight (and those claimed ahead) finish.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let Self { work, owner } = self;
        let pace = work.pace();
        let owner: Arc<str> = owner.into();
        let slots = Arc::new(Semaphore::new(pace.concurrency));
        let wakeup = work.wakeup();
        let mut in_flight = JoinSet::new();
        // Claimed, waiting for a slot (at most `pace.ahead` beyond the slots), and the claim running, if any.
        let mut queued: VecDeque<W::Item> = VecDeque::new();
        let mut claiming: JoinSet<Claimed<W::Item>> = JoinSet::new();
        // Whether more may be due right now (the last claim came back full, or something woke the loop);
        // when not, the loop waits until `idle_until` unless woken.
        let mut more_due = true;
        let mut idle_until = tokio::time::Instant::now();
        // When a slot first stood free with nothing claimed for it, for `pace.gather`.
        let mut free_since: Option<tokio::time::Instant> = None;
        tracing::info!(owner = %owner, kind = work.kind(), concurrency = pace.concurrency, ahead = pace.ahead, "background job started");
        loop {
            while in_flight.try_join_next().is_some() {}
            while !queued.is_empty() {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    break;
                };
                let Some(item) = queued.pop_front() else {
                    break;
                };
                let (work, owner) = (work.clone(), owner.clone());
                in_flight.spawn(async move {
                    work.process(&owner, item).await;
                    drop(permit);
                });
            }
            if *stop.borrow() && claiming.is_empty() && queued.is_empty() {
                break;
            }
            let held = pace.concurrency - slots.available_permits() + queued.len();
            let room = (pace.concurrency + pace.ahead).saturating_sub(held);
            let free = slots.available_permits().saturating_sub(queued.len());
            if free == 0 {
                free_since = None;
            } else if free_since.is_none() {
                free_since = Some(tokio::time::Instant::now());
            }
            let gathered = free > 0
                && (in_flight.is_empty()
                    || free_since.is_some_and(|since| since.elapsed() >= pace.gather));
            if claiming.is_empty()
                && more_due
                && !*stop.borrow()
                && room > 0
                && (room >= pace.refill_at.max(1) || gathered)
            {
                let (work, owner) = (work.clone(), owner.clone());
                claiming.spawn(async move { (room, work.claim(&owner, room).await) });
            }
            let gather_at = free_since.map(|since| since + pace.gather);
            tokio::select! {
                claimed = claiming.join_next(), if !claiming.is_empty() => {
                    let (asked, claimed) = match claimed {
                        Some(Ok(result)) => result,
                        // The claim task panicked or was cancelled: nothing came of it.
                        _ => (1, Ok(Vec::new())),
                    };
                    let claimed = claimed.unwrap_or_else(|e| {
                        tracing::warn!(kind = work.kind(), error = %e, "could not claim work; retrying");
                        Vec::new()
                    });
                    more_due = !claimed.is_empty() && claimed.len() == asked;
                    queued.extend(claimed);
                    if !more_due {
                        idle_until = tokio::time::Instant::now()
                            + idle_sleep(work.next_due().await, pace.poll_interval);
                    }
                }
                _ = in_flight.join_next(), if !in_flight.is_empty() => {
                    // A finished item may make held-back work claimable (per-endpoint caps).
                    if pace.reclaim_on_completion {
                        more_due = true;
                    }
                }
                _ = tokio::time::sleep_until(gather_at.unwrap_or(idle_until)),
                    if more_due && claiming.is_empty() && gather_at.is_some() => {}
                _ = tokio::time::sleep_until(idle_until), if !more_due => more_due = true,
                _ = notified(wakeup.as_deref()) => more_due = true,
                _ = stop.changed(), if !*stop.borrow() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
        tracing::info!(owner = %owner, kind = work.kind(), "background job stopped");
    }

    /// Processes up to `limit` due items in rounds (see the module docs) and returns how many it took.
    pub async fn run_rounds(&self, limit: usize) -> Result<usize, StoreError> {
        let started = Instant::now();
        let concurrency = self.work.pace().concurrency;
        let mut done = 0;
        while done < limit && started.elapsed() < ROUNDS_FOR {
            let round = concurrency.min(limit - done);
            let items = self.work.claim(&self.owner, round).await?;
            if items.is_empty() {
                break;
            }
            done += items.len();
            futures::future::join_all(
                items
                    .into_iter()
                    .map(|item| self.work.process(&self.owner, item)),
            )
            .await;
        }
        Ok(done)
    }

    /// Gives the work back, once the loop is done with it.
    pub fn into_work(self) -> Arc<W> {
        self.work
    }
}

/// What a claim task brings back: how many it asked for, and what it got.
type Claimed<T> = (usize, Result<Vec<T>, StoreError>);

async fn notified(wakeup: Option<&Notify>) {
    match wakeup {
        Some(notify) => notify.notified().await,
        None => std::future::pending().await,
    }
}

/// Until the next item is due, but never longer than the poll interval (±10 %).
fn idle_sleep(next_due: Option<DateTime<Utc>>, poll: Duration) -> Duration {
    let poll = jittered(poll);
    match next_due {
        Some(at) => (at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(MIN_IDLE_SLEEP, poll.max(MIN_IDLE_SLEEP)),
        None => poll,
    }
}

/// `base` ±10 %, so work that failed together (or loops that started together) do not come back together.
pub fn jittered(base: Duration) -> Duration {
    let jitter = opensend_core::random::os_random::<2>()
        .map(|b| f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX))
        .unwrap_or(0.5);
    base.mul_f64(0.9 + 0.2 * jitter)
}

/// A lease owner name unique to one loop: its kind, the host, the process and a random suffix.
pub fn worker_name(kind: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    let suffix = opensend_core::random::os_random::<4>()
        .map(hex::encode)
        .unwrap_or_default();
    format!("{kind}-{host}-{}-{suffix}", std::process::id())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A queue of numbers in memory: claims take from the front, processing records what it saw.
    struct Numbers {
        queue: Mutex<Vec<u32>>,
        seen: Mutex<Vec<u32>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
        /// Claimed and not processed yet (in flight or claimed ahead), and the most there ever were.
        open: AtomicUsize,
        most_open: AtomicUsize,
        concurrency: usize,
        ahead: usize,
        /// How long processing one item takes.
        work_for: Duration,
    }

    impl Numbers {
        fn new(count: u32, concurrency: usize) -> Self {
            Self {
                queue: Mutex::new((0..count).collect()),
                seen: Mutex::new(Vec::new()),
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
                open: AtomicUsize::new(0),
                most_open: AtomicUsize::new(0),
                concurrency,
                ahead: 0,
                work_for: Duration::ZERO,
            }
        }
    }

    impl LeasedWork for Numbers {
        type Item = u32;

        fn kind(&self) -> &'static str {
            "numbers"
        }

        fn pace(&self) -> Pace {
            Pace {
                ahead: self.ahead,
                ..Pace::new(self.concurrency, Duration::from_millis(20))
            }
        }

        async fn claim(&self, _owner: &str, limit: usize) -> Result<Vec<u32>, StoreError> {
            let mut queue = self.queue.lock().unwrap();
            let take = limit.min(queue.len());
            let open = self.open.fetch_add(take, Ordering::SeqCst) + take;
            self.most_open.fetch_max(open, Ordering::SeqCst);
            Ok(queue.drain(..take).collect())
        }

        async fn process(&self, _owner: &str, item: u32) {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            if self.work_for.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(self.work_for).await;
            }
            self.seen.lock().unwrap().push(item);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.open.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn rounds_take_each_item_once_and_stop_at_the_limit() {
        let jobs = ClaimLoop::new(Numbers::new(25, 4));
        assert_eq!(jobs.run_rounds(10).await.unwrap(), 10);
        assert_eq!(jobs.run_rounds(100).await.unwrap(), 15);
        assert_eq!(jobs.run_rounds(100).await.unwrap(), 0);
        let mut seen = jobs.work().seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
        assert!(jobs.work().most_in_flight.load(Ordering::SeqCst) <= 4);
    }

    #[tokio::test]
    async fn a_continuous_run_drains_the_queue_within_its_concurrency_and_stops() {
        let jobs = ClaimLoop::new(Numbers::new(200, 3));
        assert!(jobs.owner().starts_with("numbers-"));
        let work = jobs.work.clone();
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(jobs.run(stopped));
        while work.seen.lock().unwrap().len() < 200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(true).unwrap();
        running.await.unwrap();
        assert_eq!(work.seen.lock().unwrap().len(), 200);
        assert!(work.most_in_flight.load(Ordering::SeqCst) <= 3);
    }

    #[tokio::test]
    async fn work_is_claimed_ahead_within_bounds_and_all_of_it_is_processed_at_a_stop() {
        let mut numbers = Numbers::new(400, 4);
        numbers.ahead = 4;
        numbers.work_for = Duration::from_millis(2);
        let jobs = ClaimLoop::new(numbers);
        let work = jobs.work.clone();
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(jobs.run(stopped));
        while work.seen.lock().unwrap().len() < 100 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        stop.send(true).unwrap();
        running.await.unwrap();
        // Claimed ahead: more claimed than in flight at some point, never more than the slots and `ahead`.
        let most_open = work.most_open.load(Ordering::SeqCst);
        assert!(most_open > 4 && most_open <= 8, "{most_open}");
        assert!(work.most_in_flight.load(Ordering::SeqCst) <= 4);
        // Whatever was claimed was processed before the loop stopped, each item once.
        assert_eq!(work.open.load(Ordering::SeqCst), 0);
        let mut seen = work.seen.lock().unwrap().clone();
        let processed = seen.len();
        assert_eq!(processed + work.queue.lock().unwrap().len(), 400);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), processed);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_names_are_unique() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100));
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        assert_ne!(worker_name("x"), worker_name("x"));
        let soon = Utc::now() + chrono::TimeDelta::milliseconds(1);
        assert!(idle_sleep(Some(soon), Duration::from_secs(1)) >= MIN_IDLE_SLEEP);
    }
}
