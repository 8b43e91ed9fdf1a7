//! The background task: sleeps until the next due time (refresh, back-off, outbox,
//! optional validation) or until the schedule changes.

use super::*;

impl AuthClient {
    // --------------------------------------------------------------------------- scheduler

    pub(super) fn spawn_scheduler(&self) {
        if !self.inner.cfg.background || self.inner.scheduler_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.subscribe();
        let stopped = self.inner.stopped.clone();
        let clock = self.inner.clock.clone();
        tokio::spawn(scheduler(weak, wake, stopped, clock));
    }

    /// The next moment something is due, if anything.
    pub(super) async fn next_due(&self) -> Option<SystemTime> {
        let mut due: Vec<SystemTime> = self.store_retry_due().into_iter().collect();
        if let Some(session) = self.current() {
            let retry_at = lock(&self.inner.retry).next_at;
            due.push(retry_at.unwrap_or(session.refresh_at));
            due.extend(self.idle_deadline());
            if let Some(every) = self.inner.cfg.validate_interval {
                due.push(self.inner.clock.now() + every);
            }
        }
        if let Ok(entries) = self.load_outbox().await
            && let Some(first) = entries.iter().map(|e| e.next_attempt_at).min()
        {
            due.push(std::time::UNIX_EPOCH + Duration::from_millis(first.max(0) as u64));
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
            let retry_at = lock(&self.inner.retry).next_at;
            if now >= retry_at.unwrap_or(session.refresh_at) {
                let _ = self.refresh_from(&session.refresh_token).await;
            }
        }
        let _ = self.drain_outbox(first).await;
    }
}

async fn scheduler(
    weak: Weak<Inner>,
    mut wake: watch::Receiver<u64>,
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
            wake.borrow_and_update();
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
        match next {
            Some(at) => {
                tokio::select! {
                    _ = clock.sleep_until(at) => {}
                    changed = wake.changed() => if changed.is_err() { return },
                }
            }
            None => {
                if wake.changed().await.is_err() {
                    return;
                }
            }
        }
        if let Some(inner) = weak.upgrade() {
            inner.metrics.wakeups.fetch_add(1, Ordering::SeqCst);
        }
    }
}
