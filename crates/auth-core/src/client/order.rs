//! The engine's locks, and the one order in which they may be taken.
//!
//! | level | lock | what it serialises |
//! | --- | --- | --- |
//! | 1 `Refresh` | `Inner::refresh_gate` | refreshes in this process (single flight) |
//! | 2 `RefreshProcess` | the `<profile>.lock` file | refreshes across processes, held across the request |
//! | 3 `Commit` | the slot's gate | changes of the stored and in-memory session in this process |
//! | 4 `CommitProcess` | the `<profile>.commit.lock` file | the same across processes; never across a request |
//! | 5 `Outbox` | the outbox's gate | read-modify-write of the stored revocations |
//! | 6 `OutboxProcess` | the `<profile>.outbox.lock` file | the same across processes |
//! | 7 `Flows` | `Inner::flows_gate` | read-modify-write of the stored flows |
//!
//! A lock may be taken only while every lock held is of a lower level: a refresh holds
//! 1 and 2 while it asks the server, then takes 3 and 4 to commit the answer; a sign-in
//! commits (3, 4) and may queue the replaced session's revocation (5, 6) before letting
//! go; a sign-out queues (5, 6), lets go, then removes the session (3, 4). No path takes a
//! lower level while holding a higher one, so no two paths can wait on each other.
//!
//! Debug builds check it: every public operation runs in a [`scope`], every acquisition
//! goes through [`enter`], and `enter` panics when the operation already holds a lock of
//! the same or a higher level. The record belongs to the operation, not to the task, so
//! two operations polled together in one task (`tokio::join!`) wait on each other as
//! they should instead of tripping the check. Release builds compile the check away.

use std::future::Future;

/// A lock's place in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Refresh = 1,
    RefreshProcess = 2,
    Commit = 3,
    CommitProcess = 4,
    Outbox = 5,
    OutboxProcess = 6,
    Flows = 7,
}

/// Runs one engine operation with its own record of held locks (debug builds). An
/// operation started inside another one shares the outer record, so a path that calls a
/// public method while holding a lock is still checked. Release builds return the
/// operation itself; debug builds wrap it without another `async` layer (nested
/// operations would otherwise each hold their inner future twice over).
pub(crate) fn scope<F: Future>(operation: F) -> impl Future<Output = F::Output> {
    #[cfg(debug_assertions)]
    {
        let record = checks::HELD.try_with(Clone::clone).unwrap_or_default();
        checks::HELD.scope(record, operation)
    }
    #[cfg(not(debug_assertions))]
    {
        operation
    }
}

/// Marks a lock as held (debug builds) until dropped.
#[derive(Debug)]
#[must_use = "the lock counts as held only while this lives"]
pub(crate) struct Entered {
    #[cfg(debug_assertions)]
    level: Level,
}

/// Records that the caller takes a lock of `level`; panics (debug builds) if its
/// operation already holds one of the same or a higher level, or if it runs outside any
/// operation's [`scope`].
pub(crate) fn enter(level: Level) -> Entered {
    #[cfg(debug_assertions)]
    {
        checks::push(level);
        Entered { level }
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = level;
        Entered {}
    }
}

#[cfg(debug_assertions)]
impl Drop for Entered {
    fn drop(&mut self) {
        checks::pop(self.level);
    }
}

#[cfg(debug_assertions)]
mod checks {
    use std::sync::{Arc, Mutex};

    use super::Level;

    /// The locks one operation holds, in the order taken (shared with the operations it
    /// starts).
    pub(super) type Record = Arc<Mutex<Vec<Level>>>;

    tokio::task_local! {
        pub(super) static HELD: Record;
    }

    fn with<T>(f: impl FnOnce(&mut Vec<Level>) -> T) -> Option<T> {
        HELD.try_with(|record| f(&mut record.lock().unwrap_or_else(|e| e.into_inner())))
            .ok()
    }

    pub(super) fn push(level: Level) {
        let taken = with(|held| match held.iter().max() {
            Some(top) if *top >= level => Err(held.clone()),
            _ => {
                held.push(level);
                Ok(())
            }
        });
        match taken {
            Some(Ok(())) => {}
            Some(Err(taken)) => {
                panic!("lock order: {level:?} taken while holding {taken:?} (see client/order.rs)")
            }
            None => panic!(
                "lock order: {level:?} taken outside an engine operation (wrap it in order::scope)"
            ),
        }
    }

    pub(super) fn pop(level: Level) {
        // Outside the scope (a future dropped after its scope ended) there is no record
        // left to correct.
        let _ = with(|held| {
            if let Some(at) = held.iter().rposition(|l| *l == level) {
                held.remove(at);
            }
        });
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn locks_in_order_are_fine_in_any_release_order() {
        scope(async {
            let refresh = enter(Level::Refresh);
            let commit = enter(Level::Commit);
            let outbox = enter(Level::Outbox);
            drop(commit);
            drop(refresh);
            drop(outbox);
            // All released: the order starts again.
            let _commit = enter(Level::Commit);
        })
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "lock order: Commit taken while holding [Outbox]")]
    async fn a_lower_lock_under_a_higher_one_is_caught() {
        scope(async {
            let _outbox = enter(Level::Outbox);
            let _commit = enter(Level::Commit);
        })
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "lock order: Refresh taken while holding [Refresh]")]
    async fn an_inner_operation_shares_the_outer_record() {
        scope(async {
            let _refresh = enter(Level::Refresh);
            scope(async { drop(enter(Level::Refresh)) }).await;
        })
        .await;
    }

    #[tokio::test]
    async fn operations_joined_in_one_task_keep_separate_records() {
        let (held, taken) = tokio::sync::oneshot::channel::<()>();
        let first = scope(async move {
            let _commit = enter(Level::Commit);
            // Suspended while holding Commit; the second operation runs meanwhile.
            let _ = taken.await;
        });
        let second = scope(async move {
            drop(enter(Level::Refresh));
            let _ = held.send(());
        });
        tokio::join!(first, second);
    }

    #[tokio::test]
    #[should_panic(expected = "outside an engine operation")]
    async fn a_lock_outside_any_operation_is_caught() {
        drop(enter(Level::Flows));
    }
}
