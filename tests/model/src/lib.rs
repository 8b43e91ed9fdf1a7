//! The engine's cross-process protocol as a model, explored by a model checker
//! ([`stateright`]): two processes on one device (the app and `authctl`) share one store
//! (the keyring's session and outbox, the lock folder's refresh lock and signed-out
//! marks) and talk to one GoTrue. Every step of theirs — and every failure around them: a
//! store refusing writes, a broken lock folder, another app version's unreadable session,
//! an answer lost before or after the server acted, a partly readable answer, a proxy's
//! refusal, a kill at any step — is an action the checker may take in any order.
//!
//! The steps are the engine's (`crates/auth-core/src/client`): a refresh holds the
//! refresh lock, follows the store, sends, and commits its answer only if the store
//! still holds what it sent (`SessionSlot::replace_if_unchanged`); a sign-out queues its
//! revocation, then removes the local session (or keeps the stored copy, marked, when the
//! store would not queue it); a start restores, or finishes a sign-out. The server is
//! GoTrue's v2 refresh-token algorithm (`gotrue-protocol.md` §2.3) with a reuse interval
//! of zero: the live token rotates, its immediate predecessor is answered with the live
//! one, anything older is reuse and deletes the session.
//!
//! [`Bugs`] switches back, one at a time, what the engine did before issue 25, so the
//! checker can show each of those bugs as a counterexample.

mod step;

use std::collections::BTreeSet;

use stateright::{Model, Property, Representative};

pub use step::Outcome;

/// Processes on the device.
pub const PROCS: usize = 2;
/// Sessions the server may create (sign-ins).
pub const SESSIONS: usize = 2;

/// A refresh token: generation `generation` of session `sid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tok {
    pub sid: u8,
    pub generation: u8,
}

/// A sign-out's scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Local,
    Global,
    Others,
}

/// A revocation owed to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Revocation {
    pub sid: u8,
    pub scope: Scope,
}

/// What the keyring holds as the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stored {
    Session(Tok),
    /// Another app version's session, which this one cannot read.
    Foreign,
}

/// The device's shared state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Store {
    pub session: Option<Stored>,
    pub outbox: BTreeSet<Revocation>,
    /// Sessions marked signed out (`<profile>.signed-out` in the lock folder).
    pub marked: BTreeSet<u8>,
    pub refuses_writes: bool,
    pub lock_dir_broken: bool,
    /// The process holding the refresh lock.
    pub refresh_lock: Option<usize>,
}

/// GoTrue: each session's live refresh-token counter while the session exists.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Server {
    pub counter: [Option<u8>; SESSIONS],
    pub created: u8,
}

/// A refresh answer, as the process reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Answer {
    Rotated(Tok),
    /// The server rotated to this token, but the rest of the answer is unreadable.
    Partial(Tok),
    /// Lost before or after the server acted, or a 5xx.
    Transient,
    /// The session is gone at the server.
    Gone,
}

/// Where a process is in a multi-step operation (others can act between its steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pc {
    Idle,
    /// Holding the refresh lock, its request answered (or not) but not yet handled.
    Refreshing {
        sent: Tok,
        answer: Answer,
    },
    /// A local or global sign-out: its revocation queued in the store (or not), the local
    /// session not removed yet.
    SigningOut {
        rev: Revocation,
        tok: Tok,
        queued: bool,
    },
}

/// One process.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Proc {
    pub up: bool,
    pub mem: Option<Tok>,
    /// The token the store still holds under a refreshed session it could not save.
    pub unsaved_base: Option<Tok>,
    pub backoff: bool,
    /// Per session, the newest generation this process has received, plus one.
    pub known: [u8; SESSIONS],
    /// Revocations owed in memory (the store would not queue them).
    pub unqueued: BTreeSet<Revocation>,
    pub pc: Pc,
}

/// What went wrong, once and for ever (the properties read these).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// A process sent a refresh token older than one it had received.
    pub superseded_sent: bool,
    /// The server saw a token older than the live one's predecessor and deleted the session.
    pub reuse_detected: bool,
    /// A process restored, adopted or stored a session the user had signed out.
    pub resurrected: bool,
    /// A failure left due work without a back-off: the background task goes round at once.
    pub spun: bool,
    /// An explicit refresh (the button, focus) was answered from the back-off, untried.
    pub answered_from_backoff: bool,
}

/// The whole device and its server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct World {
    pub procs: [Proc; PROCS],
    pub store: Store,
    pub server: Server,
    /// Sessions whose local or global sign-out returned to the user.
    pub signed_out: BTreeSet<u8>,
    pub foreign_written: bool,
    pub flags: Flags,
}

/// The two processes are alike: a state and the one with them swapped are explored once.
impl Representative for World {
    fn representative(&self) -> Self {
        if self.procs[0] <= self.procs[1] {
            return self.clone();
        }
        let mut swapped = self.clone();
        swapped.procs.swap(0, 1);
        swapped.store.refresh_lock = self.store.refresh_lock.map(|p| 1 - p);
        swapped
    }
}

/// The engine before issue 25, one bug at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bugs {
    /// A lock folder that cannot be used, or another process's stored session that cannot
    /// be read, returns an error without a back-off.
    pub no_backoff_on_lock_or_unreadable: bool,
    /// A partly readable refresh answer is an error: the rotated token is dropped, and no
    /// back-off.
    pub partial_answer_dropped: bool,
    /// A sign-out whose revocation the store will not queue keeps it nowhere, and a stored
    /// session the store will not delete is restored at the next start.
    pub no_signed_out_mark: bool,
    /// A proxy's 401/403 with a JSON `error` counts as "already revoked".
    pub proxy_counts_as_revoked: bool,
    /// An explicit refresh during the back-off gets the cached error.
    pub no_try_now: bool,
    /// A process whose refreshed session the store could not save refreshes again: two
    /// generations ahead of the stored token another process may send.
    pub refreshes_ahead_of_store: bool,
}

impl Bugs {
    pub const NONE: Bugs = Bugs {
        no_backoff_on_lock_or_unreadable: false,
        partial_answer_dropped: false,
        no_signed_out_mark: false,
        proxy_counts_as_revoked: false,
        no_try_now: false,
        refreshes_ahead_of_store: false,
    };
}

/// Each earlier bug alone, with the property the checker must find broken.
pub fn earlier_bugs() -> Vec<(&'static str, Bugs, &'static str)> {
    let one = |set: fn(&mut Bugs)| {
        let mut bugs = Bugs::NONE;
        set(&mut bugs);
        bugs
    };
    vec![
        (
            "no back-off for a lock or unreadable-store failure",
            one(|b| b.no_backoff_on_lock_or_unreadable = true),
            NO_SPIN,
        ),
        (
            "a partly readable answer dropped",
            one(|b| b.partial_answer_dropped = true),
            KEPT,
        ),
        (
            "no signed-out mark",
            one(|b| b.no_signed_out_mark = true),
            NEVER_BACK,
        ),
        (
            "a proxy's refusal counts as revoked",
            one(|b| b.proxy_counts_as_revoked = true),
            OWED,
        ),
        ("no try-now", one(|b| b.no_try_now = true), TRY_NOW),
        (
            "refreshing ahead of the store",
            one(|b| b.refreshes_ahead_of_store = true),
            NOT_SUPERSEDED,
        ),
    ]
}

pub const NEVER_BACK: &str = "a signed-out session never comes back";
pub const NOT_SUPERSEDED: &str = "a superseded refresh token is never sent";
pub const KEPT: &str = "a rotated refresh token is never dropped";
pub const OWED: &str = "every promised revocation is delivered or visibly owed";
pub const NO_SPIN: &str = "no failure loops without a sleep";
pub const TRY_NOW: &str = "an explicit refresh tries at once";

/// The model: the engine (with `bugs`), within bounds.
#[derive(Clone, Debug)]
pub struct Protocol {
    pub bugs: Bugs,
    /// The highest refresh-token generation explored.
    pub max_generation: u8,
    /// Whether the environment may break the lock folder and write a foreign session.
    pub lock_and_foreign_faults: bool,
    /// The sign-out scopes the user may ask for.
    pub scopes: Vec<Scope>,
}

impl Protocol {
    /// The engine as it is now.
    pub fn fixed(max_generation: u8) -> Self {
        Self {
            bugs: Bugs::NONE,
            max_generation,
            lock_and_foreign_faults: true,
            scopes: vec![Scope::Local, Scope::Global, Scope::Others],
        }
    }
}

/// A step the checker may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    SignIn(usize),
    /// The background task's refresh (not while backing off), or the Refresh button's
    /// (`forced`), with what becomes of its request.
    Refresh {
        p: usize,
        forced: bool,
        outcome: Outcome,
    },
    /// The refresh's answer handled (committed, backed off, or the session ended).
    HandleAnswer(usize),
    SignOut(usize, Scope),
    /// A local or global sign-out removes the local session.
    RemoveLocal(usize),
    /// An `others` sign-out, in one request.
    SignOutOthers(usize, Outcome),
    /// A queued (`stored`) or in-memory revocation sent.
    Deliver {
        p: usize,
        rev: Revocation,
        stored: bool,
        outcome: Outcome,
    },
    /// Revocations owed in memory moved into the store, which takes writes again.
    QueueOwed(usize),
    /// The save of a refreshed session the store refused, retried.
    RetrySave(usize),
    /// The back-off runs out, or a focus, resume or network change nudges.
    TryNow(usize),
    Kill(usize),
    Start(usize),
    ToggleStoreWrites,
    ToggleLockDir,
    WriteForeign,
}

impl Model for Protocol {
    type State = World;
    type Action = Action;

    fn init_states(&self) -> Vec<World> {
        let proc = step::fresh(true);
        vec![World {
            procs: [proc.clone(), proc],
            store: Store {
                session: None,
                outbox: BTreeSet::new(),
                marked: BTreeSet::new(),
                refuses_writes: false,
                lock_dir_broken: false,
                refresh_lock: None,
            },
            server: Server {
                counter: [None; SESSIONS],
                created: 0,
            },
            signed_out: BTreeSet::new(),
            foreign_written: false,
            flags: Flags::default(),
        }]
    }

    fn actions(&self, w: &World, actions: &mut Vec<Action>) {
        step::actions(self, w, actions);
    }

    fn next_state(&self, w: &World, action: Action) -> Option<World> {
        let mut next = w.clone();
        step::apply(self, &mut next, action);
        (next != *w).then_some(next)
    }

    fn within_boundary(&self, w: &World) -> bool {
        w.server
            .counter
            .iter()
            .flatten()
            .all(|c| *c <= self.max_generation)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(NEVER_BACK, |_, w: &World| !w.flags.resurrected),
            Property::always(NOT_SUPERSEDED, |_, w: &World| {
                !w.flags.superseded_sent && !w.flags.reuse_detected
            }),
            Property::always(KEPT, |_, w: &World| {
                w.procs.iter().all(|p| {
                    p.mem
                        .is_none_or(|t| t.generation + 1 >= p.known[usize::from(t.sid)])
                })
            }),
            Property::always(OWED, |_, w: &World| {
                w.signed_out.iter().all(|sid| owed_or_done(w, *sid))
            }),
            Property::always(NO_SPIN, |_, w: &World| !w.flags.spun),
            Property::always(TRY_NOW, |_, w: &World| !w.flags.answered_from_backoff),
            Property::sometimes("a refresh is committed", |_, w: &World| {
                w.procs
                    .iter()
                    .any(|p| p.mem.is_some_and(|t| t.generation >= 1))
            }),
            Property::sometimes("a sign-out's revocation is delivered", |_, w: &World| {
                w.signed_out
                    .iter()
                    .any(|sid| w.server.counter[usize::from(*sid)].is_none())
            }),
            Property::sometimes(
                "a stored copy is kept for an owed revocation",
                |_, w: &World| !w.store.marked.is_empty(),
            ),
            Property::sometimes("two sessions exist at once", |_, w: &World| {
                w.server.counter.iter().all(Option::is_some)
            }),
        ]
    }
}

/// Whether the server has ended `sid`, or its revocation is owed where someone will
/// deliver it: queued in the store, held in a running process, or kept with the stored
/// copy a start will queue it from.
pub fn owed_or_done(w: &World, sid: u8) -> bool {
    let owes = |r: &Revocation| r.sid == sid && r.scope != Scope::Others;
    w.server.counter[usize::from(sid)].is_none()
        || w.store.outbox.iter().any(owes)
        || w.procs.iter().any(|p| p.up && p.unqueued.iter().any(owes))
        || (w.store.marked.contains(&sid) && stored_tok(w).is_some_and(|t| t.sid == sid))
}

pub(crate) fn stored_tok(w: &World) -> Option<Tok> {
    match w.store.session {
        Some(Stored::Session(t)) => Some(t),
        _ => None,
    }
}
