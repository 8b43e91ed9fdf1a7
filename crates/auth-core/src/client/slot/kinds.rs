//! What the slot's operations take and answer: plain data, no behaviour.

use super::*;

/// Which stored session a removal may delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::client) enum Removal {
    /// The user signed out in this process: this session's stored copy (or an unreadable
    /// one) is removed — a session another process signed in since is that process's, and
    /// the sign-out must not orphan it — and marked signed out if the store will not
    /// delete it.
    UserSignOut,
    /// Only the session that ended (or an unreadable one): a session another process
    /// stored since — a new sign-in — is not this process's to remove.
    IfSameSession,
    /// The user signed out, but the store would not queue the revocation: the stored
    /// session stays as the one durable copy of the tokens the revocation needs, marked
    /// signed out (no process adopts it, a start queues its revocation and removes it).
    KeepOwed,
}

/// A store operation to retry: how many attempts failed, when to try again.
#[derive(Debug, Clone, Copy)]
pub(in crate::client) struct Pending {
    pub(in crate::client) attempt: u32,
    pub(in crate::client) next_at: SystemTime,
}

/// A refreshed session the store does not hold yet: the store still holds the token it
/// superseded (`stored_token`), which is never sent again.
#[derive(Debug, Clone)]
pub(in crate::client) struct Unsaved {
    pub(in crate::client) stored_token: RefreshToken,
    pub(in crate::client) pending: Pending,
}

/// The store operations waiting to be retried (the refresh's own back-off is elsewhere:
/// `refresh.rs`).
#[derive(Debug, Default)]
pub(in crate::client) struct StoreRetry {
    pub(in crate::client) unsaved: Option<Unsaved>,
    /// The stored session could not be read at start (a locked keyring).
    pub(in crate::client) restore: Option<Pending>,
}

/// What a start (or a retried read) found.
#[derive(Debug)]
pub(in crate::client) enum Restored {
    /// A session, now in memory.
    Session,
    Empty,
    /// A sign-out had been asked for this session before the process ended (its
    /// revocation in the outbox, or the signed-out marker): it is not restored, and its
    /// stored copy is removed once the revocation is queued.
    FinishedSignOut {
        removed: Result<(), StoreError>,
    },
    /// Unreadable data, removed.
    Corrupt(String),
    /// The store could not be read (locked, unavailable): retried later.
    Unreadable(StoreError),
    /// A session is in memory already (signed in meanwhile): nothing read.
    AlreadySignedIn,
}

/// Whether a stored session had been signed out by the user, at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::client) enum SignedOut {
    /// No: it is restored.
    No,
    /// Yes, and its revocation is queued in the store.
    Queued,
    /// Yes, and its revocation is owed in memory only (the store would not queue it).
    Owed,
}

/// What following the store found.
#[derive(Debug)]
pub(in crate::client) enum Followed {
    /// The store holds the session this process has.
    Unchanged,
    /// Another process refreshed it (`same_session`) or signed in another: taken over.
    Adopted {
        session: Box<Session>,
        same_session: bool,
    },
    /// Another process signed out: ended here too (nothing deleted).
    Ended,
}

/// What became of a refreshed (or unsaved) session offered to the slot.
#[derive(Debug)]
pub(in crate::client) enum Replaced {
    /// Stored and published.
    Saved,
    /// Published, not stored (the store failed): the save is retried.
    Unsaved(AuthError),
    /// The session changed in this process meanwhile (signed out, signed in again): the
    /// offered session is nobody's.
    Stale,
    /// Another process ended or replaced the stored session meanwhile: followed, and the
    /// offered session is nobody's.
    Lost(Followed),
}
