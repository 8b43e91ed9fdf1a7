//! The steps: which ones a state allows, and what each does — the engine's as it is, or
//! as it was where a [`Bugs`] switch says so — and the server's answers.

use super::*;

/// What becomes of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The server acts and its answer arrives.
    Answered,
    /// The server acts; its answer arrives only partly readable (a refresh).
    Partial,
    /// The server acts; its answer is lost (a time-out).
    LostAfter,
    /// The request never reaches the server (offline, a 5xx before it acted).
    LostBefore,
    /// A gateway in front of the server refuses in its own words (401/403 with a JSON
    /// `error`), without the server's code.
    Proxy,
}

const REFRESH_OUTCOMES: [Outcome; 4] = [
    Outcome::Answered,
    Outcome::Partial,
    Outcome::LostAfter,
    Outcome::LostBefore,
];
const LOGOUT_OUTCOMES: [Outcome; 4] = [
    Outcome::Answered,
    Outcome::LostAfter,
    Outcome::LostBefore,
    Outcome::Proxy,
];

pub(crate) fn actions(m: &Protocol, w: &World, out: &mut Vec<Action>) {
    for (p, pr) in w.procs.iter().enumerate() {
        if !pr.up {
            out.push(Action::Start(p));
            continue;
        }
        out.push(Action::Kill(p));
        match pr.pc {
            Pc::Refreshing { .. } => {
                out.push(Action::HandleAnswer(p));
                continue;
            }
            Pc::SigningOut { .. } => {
                out.push(Action::RemoveLocal(p));
                continue;
            }
            Pc::Idle => {}
        }
        match pr.mem {
            None if usize::from(w.server.created) < SESSIONS => out.push(Action::SignIn(p)),
            None => {}
            Some(_) => {
                // The other process holds the refresh lock: this one waits (an unusable
                // lock folder fails at once instead).
                if w.store.refresh_lock.is_none() || w.store.lock_dir_broken {
                    for outcome in REFRESH_OUTCOMES {
                        out.push(Action::Refresh {
                            p,
                            forced: pr.backoff,
                            outcome,
                        });
                    }
                }
                for scope in &m.scopes {
                    match scope {
                        Scope::Others => {
                            for outcome in LOGOUT_OUTCOMES {
                                out.push(Action::SignOutOthers(p, outcome));
                            }
                        }
                        here => out.push(Action::SignOut(p, *here)),
                    }
                }
            }
        }
        // A queued revocation is sent by whichever process gets to it; the effect is the
        // same, so only the first process free to send it does (fewer equal states).
        let first_free = w
            .procs
            .iter()
            .position(|q| q.up && q.pc == Pc::Idle)
            .is_some_and(|first| first == p);
        let queued = w.store.outbox.iter().filter(|_| first_free);
        let owed = queued.map(|r| (*r, true));
        for (rev, stored) in owed.chain(pr.unqueued.iter().map(|r| (*r, false))) {
            for outcome in LOGOUT_OUTCOMES {
                out.push(Action::Deliver {
                    p,
                    rev,
                    stored,
                    outcome,
                });
            }
        }
        if !w.store.refuses_writes && !pr.unqueued.is_empty() {
            out.push(Action::QueueOwed(p));
        }
        if !w.store.refuses_writes && pr.unsaved_base.is_some() {
            out.push(Action::RetrySave(p));
        }
        if pr.backoff {
            out.push(Action::TryNow(p));
        }
    }
    // The environment keeps one durable place working at any time: a keyring refusing
    // writes while the lock folder is unusable leaves nothing that could hold a sign-out.
    if !w.store.lock_dir_broken {
        out.push(Action::ToggleStoreWrites);
    }
    if m.lock_and_foreign_faults {
        if !w.store.refuses_writes {
            out.push(Action::ToggleLockDir);
        }
        // Another app version signs in (once) where no session is stored — it does not
        // overwrite one, which no engine could protect.
        if !w.foreign_written && w.store.session.is_none() {
            out.push(Action::WriteForeign);
        }
    }
}

pub(crate) fn apply(m: &Protocol, w: &mut World, action: Action) {
    match action {
        Action::Start(p) => start(m, w, p),
        Action::Kill(p) => {
            w.procs[p] = fresh(false);
            if w.store.refresh_lock == Some(p) {
                // The OS releases a dead process's file lock.
                w.store.refresh_lock = None;
            }
        }
        Action::SignIn(p) => sign_in(w, p),
        Action::Refresh { p, forced, outcome } => refresh(m, w, p, forced, outcome),
        Action::HandleAnswer(p) => handle_answer(m, w, p),
        Action::SignOut(p, scope) => sign_out(w, p, scope),
        Action::RemoveLocal(p) => remove_local(m, w, p),
        Action::SignOutOthers(p, outcome) => sign_out_others(w, p, outcome),
        Action::Deliver {
            p,
            rev,
            stored,
            outcome,
        } => deliver(m, w, p, rev, stored, outcome),
        Action::QueueOwed(p) => {
            let owed = std::mem::take(&mut w.procs[p].unqueued);
            // A stored copy kept for one of them is not needed any more.
            if let Some(t) = stored_tok(w)
                && owed
                    .iter()
                    .any(|r| r.sid == t.sid && r.scope != Scope::Others)
                && w.store.marked.remove(&t.sid)
            {
                w.store.session = None;
            }
            w.store.outbox.extend(owed);
        }
        Action::RetrySave(p) => {
            retry_save(m, w, p);
        }
        Action::TryNow(p) => w.procs[p].backoff = false,
        Action::ToggleStoreWrites => w.store.refuses_writes = !w.store.refuses_writes,
        Action::ToggleLockDir => w.store.lock_dir_broken = !w.store.lock_dir_broken,
        Action::WriteForeign => {
            w.store.session = Some(Stored::Foreign);
            w.foreign_written = true;
        }
    }
}

pub(crate) fn fresh(up: bool) -> Proc {
    Proc {
        up,
        mem: None,
        unsaved_base: None,
        backoff: false,
        known: [0; SESSIONS],
        unqueued: BTreeSet::new(),
        pc: Pc::Idle,
    }
}

// ------------------------------------------------------------------------------ server

/// `POST /token?grant_type=refresh_token`, v2 algorithm, reuse interval zero.
fn server_refresh(w: &mut World, t: Tok) -> Answer {
    let slot = &mut w.server.counter[usize::from(t.sid)];
    match *slot {
        None => Answer::Gone,
        Some(c) if t.generation == c => {
            *slot = Some(c + 1);
            Answer::Rotated(Tok {
                sid: t.sid,
                generation: c + 1,
            })
        }
        // The immediate predecessor (the client lost the last answer): the live token.
        Some(c) if t.generation + 1 == c => Answer::Rotated(Tok {
            sid: t.sid,
            generation: c,
        }),
        Some(_) => {
            *slot = None;
            w.flags.reuse_detected = true;
            Answer::Gone
        }
    }
}

/// `POST /logout?scope=…`: whether the session still existed.
fn server_logout(w: &mut World, rev: Revocation) -> bool {
    let sid = usize::from(rev.sid);
    if w.server.counter[sid].is_none() {
        return false;
    }
    for (other, counter) in w.server.counter.iter_mut().enumerate() {
        let ends = match rev.scope {
            Scope::Local => other == sid,
            Scope::Global => true,
            Scope::Others => other != sid,
        };
        if ends {
            *counter = None;
        }
    }
    true
}

// ------------------------------------------------------------------------------ engine

/// The stored session the processes may use: a session marked signed out is nobody's.
fn live_stored(m: &Protocol, w: &World) -> Option<Stored> {
    match w.store.session {
        Some(Stored::Session(t))
            if !m.bugs.no_signed_out_mark && w.store.marked.contains(&t.sid) =>
        {
            None
        }
        other => other,
    }
}

fn learn(w: &mut World, p: usize, t: Tok) {
    let known = &mut w.procs[p].known[usize::from(t.sid)];
    *known = (*known).max(t.generation + 1);
}

/// The process takes up `t` (adopting another process's, or restoring).
fn take_up(w: &mut World, p: usize, t: Tok) {
    if w.signed_out.contains(&t.sid) {
        w.flags.resurrected = true;
    }
    learn(w, p, t);
    let pr = &mut w.procs[p];
    pr.mem = Some(t);
    pr.unsaved_base = None;
}

fn end_here(w: &mut World, p: usize) {
    let pr = &mut w.procs[p];
    pr.mem = None;
    pr.unsaved_base = None;
    pr.backoff = false;
}

/// A failure before any request: backed off (or, before, not: the task goes round).
fn fail_early(m: &Protocol, w: &mut World, p: usize) {
    if m.bugs.no_backoff_on_lock_or_unreadable {
        w.flags.spun = true;
    } else {
        w.procs[p].backoff = true;
    }
}

fn start(m: &Protocol, w: &mut World, p: usize) {
    w.procs[p] = fresh(true);
    let t = match w.store.session {
        None => return,
        Some(Stored::Foreign) => {
            // Unreadable here: reported and removed.
            if !w.store.refuses_writes {
                w.store.session = None;
            }
            return;
        }
        Some(Stored::Session(t)) => t,
    };
    let interrupted = w
        .store
        .outbox
        .iter()
        .any(|r| r.sid == t.sid && r.scope != Scope::Others);
    let marked = !m.bugs.no_signed_out_mark && w.store.marked.contains(&t.sid);
    if !interrupted && !marked {
        take_up(w, p, t);
        return;
    }
    // A sign-out to finish: its revocation queued (now, if only the mark knew), then the
    // stored copy removed; a store refusing writes keeps both, marked.
    let rev = Revocation {
        sid: t.sid,
        scope: Scope::Local,
    };
    if w.store.refuses_writes {
        if !interrupted {
            w.procs[p].unqueued.insert(rev);
        }
        if !w.store.lock_dir_broken {
            w.store.marked.insert(t.sid);
        }
        return;
    }
    if !interrupted {
        w.store.outbox.insert(rev);
    }
    w.store.session = None;
    w.store.marked.remove(&t.sid);
}

fn sign_in(w: &mut World, p: usize) {
    let sid = w.server.created;
    w.server.created += 1;
    w.server.counter[usize::from(sid)] = Some(0);
    let t = Tok { sid, generation: 0 };
    if w.store.refuses_writes {
        // It cannot be kept: revoked at once, and the sign-in fails.
        w.server.counter[usize::from(sid)] = None;
        return;
    }
    if let Some(displaced) = stored_tok(w) {
        // Another process's session, replaced: its revocation is queued.
        w.store.outbox.insert(Revocation {
            sid: displaced.sid,
            scope: Scope::Local,
        });
        w.store.marked.remove(&displaced.sid);
    }
    w.store.session = Some(Stored::Session(t));
    take_up(w, p, t);
}

fn refresh(m: &Protocol, w: &mut World, p: usize, forced: bool, outcome: Outcome) {
    let Some(mem) = w.procs[p].mem else { return };
    if forced && m.bugs.no_try_now {
        w.flags.answered_from_backoff = true;
        return;
    }
    if w.store.lock_dir_broken {
        return fail_early(m, w, p);
    }
    // Follow the store: another process may have refreshed, signed in or signed out.
    let base = w.procs[p].unsaved_base;
    match live_stored(m, w) {
        Some(Stored::Foreign) => return fail_early(m, w, p),
        None => return end_here(w, p),
        Some(Stored::Session(s)) if s == mem || Some(s) == base => {}
        Some(Stored::Session(s)) => return take_up(w, p, s),
    }
    // Never more than one generation ahead of the store: another process may send the
    // stored token, and the server forgives only the live token's predecessor.
    if base.is_some() && !m.bugs.refreshes_ahead_of_store {
        let saved = retry_save(m, w, p);
        if w.procs[p].mem != Some(mem) {
            return;
        }
        if !saved {
            w.procs[p].backoff = true;
            return;
        }
    }
    let Some(sent) = w.procs[p].mem else { return };
    if sent.generation + 1 < w.procs[p].known[usize::from(sent.sid)] {
        w.flags.superseded_sent = true;
    }
    let answer = match outcome {
        Outcome::LostBefore | Outcome::Proxy => Answer::Transient,
        Outcome::LostAfter => {
            server_refresh(w, sent);
            Answer::Transient
        }
        Outcome::Answered => server_refresh(w, sent),
        Outcome::Partial => match server_refresh(w, sent) {
            Answer::Rotated(n) => Answer::Partial(n),
            other => other,
        },
    };
    w.store.refresh_lock = Some(p);
    w.procs[p].pc = Pc::Refreshing { sent, answer };
}

fn handle_answer(m: &Protocol, w: &mut World, p: usize) {
    let Pc::Refreshing { sent, answer } = w.procs[p].pc else {
        return;
    };
    w.procs[p].pc = Pc::Idle;
    w.store.refresh_lock = None;
    let (fresh, partial) = match answer {
        Answer::Transient => {
            w.procs[p].backoff = true;
            return;
        }
        Answer::Gone => {
            if w.procs[p].mem.is_some_and(|t| t.sid == sent.sid) {
                end_here(w, p);
                // Removed only if the store still holds that session.
                if stored_tok(w).is_some_and(|t| t.sid == sent.sid) && !w.store.refuses_writes {
                    w.store.session = None;
                }
            }
            return;
        }
        Answer::Rotated(n) => (n, false),
        Answer::Partial(n) => (n, true),
    };
    learn(w, p, fresh);
    if partial && m.bugs.partial_answer_dropped {
        w.flags.spun = true;
        return;
    }
    if w.procs[p].mem != Some(sent) {
        // Signed out or replaced here meanwhile: the answer is nobody's (revoked).
        return;
    }
    commit(m, w, p, fresh);
    w.procs[p].backoff = partial;
}

/// `replace_if_unchanged`: stored if the store still holds what this process refreshed.
/// Returns whether the process's session is stored now.
fn commit(m: &Protocol, w: &mut World, p: usize, fresh: Tok) -> bool {
    let pr = &w.procs[p];
    let (mem, base) = (pr.mem, pr.unsaved_base);
    match live_stored(m, w) {
        Some(Stored::Session(x)) if Some(x) == mem || Some(x) == base => {
            if w.store.refuses_writes {
                let pr = &mut w.procs[p];
                pr.mem = Some(fresh);
                pr.unsaved_base = base.or(Some(x));
                return false;
            }
            if w.signed_out.contains(&fresh.sid) {
                w.flags.resurrected = true;
            }
            w.store.session = Some(Stored::Session(fresh));
            let pr = &mut w.procs[p];
            pr.mem = Some(fresh);
            pr.unsaved_base = None;
            true
        }
        None | Some(Stored::Foreign) => {
            end_here(w, p);
            false
        }
        Some(Stored::Session(s)) => {
            take_up(w, p, s);
            true
        }
    }
}

/// The unsaved session's save, retried. Returns whether it is stored now.
fn retry_save(m: &Protocol, w: &mut World, p: usize) -> bool {
    match w.procs[p].mem {
        Some(mem) if w.procs[p].unsaved_base.is_some() => commit(m, w, p, mem),
        _ => true,
    }
}

fn sign_out(w: &mut World, p: usize, scope: Scope) {
    let Some(tok) = w.procs[p].mem else { return };
    let rev = Revocation {
        sid: tok.sid,
        scope,
    };
    let queued = !w.store.refuses_writes;
    if queued {
        w.store.outbox.insert(rev);
    }
    w.procs[p].pc = Pc::SigningOut { rev, tok, queued };
}

fn remove_local(m: &Protocol, w: &mut World, p: usize) {
    let Pc::SigningOut { rev, tok, queued } = w.procs[p].pc else {
        return;
    };
    w.procs[p].pc = Pc::Idle;
    if m.bugs.no_signed_out_mark {
        // Before: a revocation the store would not queue was tried once and dropped (the
        // network is down in the case that matters), and a failed delete left the session
        // stored, unmarked.
        if !w.store.refuses_writes {
            w.store.session = None;
        }
    } else if !queued && w.store.refuses_writes {
        // The stored copy stays, marked, as the durable copy of the owed revocation (the
        // environment keeps the lock folder working while the keyring refuses writes).
        w.store.marked.insert(tok.sid);
        w.procs[p].unqueued.insert(rev);
    } else if !queued {
        // The store takes writes again: queued now, and the session removed.
        w.store.outbox.insert(rev);
        if ours_or_unreadable(w, tok) {
            w.store.session = None;
            w.store.marked.remove(&tok.sid);
        }
    } else if ours_or_unreadable(w, tok) {
        if !w.store.refuses_writes {
            w.store.session = None;
            w.store.marked.remove(&tok.sid);
        } else if !w.store.lock_dir_broken {
            w.store.marked.insert(tok.sid);
        }
    }
    end_here(w, p);
    w.signed_out.insert(tok.sid);
}

/// Whether the stored session is `tok`'s (or unreadable): a session another process
/// signed in since is that one's, not this sign-out's.
fn ours_or_unreadable(w: &World, tok: Tok) -> bool {
    match w.store.session {
        Some(Stored::Session(t)) => t.sid == tok.sid,
        Some(Stored::Foreign) => true,
        None => false,
    }
}

fn sign_out_others(w: &mut World, p: usize, outcome: Outcome) {
    let Some(tok) = w.procs[p].mem else { return };
    let rev = Revocation {
        sid: tok.sid,
        scope: Scope::Others,
    };
    let existed = match outcome {
        Outcome::Answered | Outcome::LostAfter => server_logout(w, rev),
        _ => true,
    };
    match outcome {
        Outcome::Answered if !existed => {
            // This session had ended at the server: signed out here too.
            end_here(w, p);
            if stored_tok(w).is_some_and(|t| t.sid == tok.sid) && !w.store.refuses_writes {
                w.store.session = None;
            }
        }
        Outcome::Answered => {}
        _ if w.store.refuses_writes => {
            w.procs[p].unqueued.insert(rev);
        }
        _ => {
            w.store.outbox.insert(rev);
        }
    }
}

fn deliver(m: &Protocol, w: &mut World, p: usize, rev: Revocation, stored: bool, outcome: Outcome) {
    if matches!(outcome, Outcome::Answered | Outcome::LostAfter) {
        server_logout(w, rev);
    }
    let done = match outcome {
        Outcome::Answered => true,
        Outcome::Proxy => m.bugs.proxy_counts_as_revoked,
        _ => false,
    };
    if !done {
        return;
    }
    if !stored {
        w.procs[p].unqueued.remove(&rev);
    } else if !w.store.refuses_writes {
        w.store.outbox.remove(&rev);
    }
}
