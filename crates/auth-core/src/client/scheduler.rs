//! The background task: sleeps until the next due time (refresh, back-off, outbox,
//! optional validation), until the schedule changes, or until the OS says the network
//! changed (`net_watch.rs`), which tries everything backing off at once.

use super::*;

impl AuthClient {
    // --------------------------------------------------------------------------- scheduler

    pub(super) fn spawn_scheduler(&self) {
        if !self.inner.cfg.background || self.inner.scheduler_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.subscribe();
        let session = self.inner.slot.subscribe();
        let stopped = self.inner.stopped.clone();
        let clock = self.inner.clock.clone();
        let net = match crate::net_watch::NetWatch::open() {
            Ok(net) => Some(net),
            Err(e) => {
                tracing::debug!(error = %e, "no network-change events; focus and resume nudge instead");
                None
            }
        };
        let wakes = Wakes { wake, session, net };
        tokio::spawn(order::scope(scheduler(weak, wakes, stopped, clock)));
    }

    /// The next moment something is due, if anything.
    pub(super) async fn next_due(&self) -> Option<SystemTime> {
        let mut due: Vec<SystemTime> = self.inner.slot.retry_due().into_iter().collect();
        if let Some(session) = self.current() {
            let retry_at = lock(&self.inner.backoff).next_at();
            due.push(retry_at.unwrap_or(session.refresh_at));
            due.extend(self.idle_deadline());
            if let Some(every) = self.inner.cfg.validate_interval {
                due.push(self.inner.clock.now() + every);
            }
        }
        if let Some(first) = self.outbox_next_attempt().await {
            due.push(first);
        }
        due.into_iter().min()
    }

    /// One round of due work. The first round after start retries every pending
    /// revocation at once (conditions may have changed while the app was closed).
    pub(super) async fn run_due(&self, first: bool) {
        let now = self.inner.clock.now();
        self.run_store_retries(now).await;
        self.sign_out_if_idle(now).await;
        if let Some(session) = self.current() {
            let retry_at = lock(&self.inner.backoff).next_at();
            if now >= retry_at.unwrap_or(session.refresh_at) {
                let _ = self.refresh_from(&session.refresh_token, false).await;
            }
        }
        let _ = self.drain_outbox(first).await;
    }
}

/// What ends the background task's sleep besides its due time.
struct Wakes {
    /// The schedule changed (a nudge, new work).
    wake: watch::Receiver<u64>,
    /// The session changed.
    session: watch::Receiver<Option<Session>>,
    /// The OS's network changes, where it offers them.
    net: Option<crate::net_watch::NetWatch>,
}

impl Wakes {
    /// Sleeps until `at` (forever when `None`) or a wake-up. `Err` when the client is gone.
    async fn sleep(&mut self, clock: &dyn Clock, at: Option<SystemTime>) -> Result<Woke, ()> {
        let due = async {
            match at {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let net = async {
            match &mut self.net {
                Some(net) => net.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = due => Ok(Woke::Due),
            changed = self.wake.changed() => changed.map(|_| Woke::Changed).map_err(|_| ()),
            changed = self.session.changed() => changed.map(|_| Woke::Changed).map_err(|_| ()),
            changed = net => match changed {
                Ok(()) => Ok(Woke::Network),
                Err(e) => {
                    tracing::warn!(error = %e, "network-change events stopped");
                    self.net = None;
                    Ok(Woke::Changed)
                }
            },
        }
    }
}

enum Woke {
    Due,
    Changed,
    Network,
}

async fn scheduler(
    weak: Weak<Inner>,
    mut wakes: Wakes,
    stopped: Arc<AtomicBool>,
    clock: Arc<dyn Clock>,
) {
    let mut validate_next: Option<SystemTime> = None;
    let mut first = true;
    loop {
        if stopped.load(Ordering::SeqCst) {
            return;
        }
        let next = {
            let Some(inner) = weak.upgrade() else { return };
            let client = AuthClient { inner };
            client.run_due(first).await;
            first = false;
            // Changes made by the work just done are already accounted for below.
            wakes.wake.borrow_and_update();
            wakes.session.borrow_and_update();
            if let Some(every) = client.inner.cfg.validate_interval {
                let now = clock.now();
                match validate_next {
                    Some(at) if now >= at => {
                        let _ = client.validate().await;
                        validate_next = Some(clock.now() + every);
                    }
                    None => validate_next = Some(now + every),
                    _ => {}
                }
            }
            let mut next = client.next_due().await;
            if let (Some(v), Some(n)) = (validate_next, next) {
                next = Some(v.min(n));
            }
            next
        };
        let Ok(woke) = wakes.sleep(clock.as_ref(), next).await else {
            return;
        };
        if let Woke::Network = woke
            && let Some(inner) = weak.upgrade()
        {
            tracing::info!("the network changed; trying what was backing off");
            AuthClient { inner }.nudge();
        }
        if let Some(inner) = weak.upgrade() {
            inner.metrics.wakeups.fetch_add(1, Ordering::SeqCst);
        }
    }
}
