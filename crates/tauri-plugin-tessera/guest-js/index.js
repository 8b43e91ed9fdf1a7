// The guest side of tauri-plugin-tessera: one function per command, and the auth-state
// event. An ES module an app with a bundler imports by path (`import * as tessera from
// '<path to>/crates/tauri-plugin-tessera/guest-js/index.js'`); with `app.withGlobalTauri`
// the plugin also injects it as `window.__TAURI__.tessera` (build.rs makes that script
// from this file: keep to `export const|function|async function NAME`, and no imports),
// which is how the Tessera app's static UI uses it. No token ever comes through here: the session stays in
// the Rust engine.

/** @typedef {{ id: string, email: string, isAnonymous: boolean }} UserView */
/** @typedef {{ user: UserView, sessionId: string, expiresAt: number, aal: string, clockSkewSecs: number }} SessionView */
/** @typedef {{ event: string, reason?: string, at: number, session: SessionView | null, error?: { code: string, message: string }, connectivity?: object }} AuthStateChange */

/** The Tauri event every auth-state change arrives as, in every window. */
export const STATE_EVENT = 'auth:state-change';
/** The event a link for another account arrives as: `{ id, current, incoming, expiresAt }`. */
export const ACCOUNT_SWITCH_EVENT = 'auth:account-switch';
/**
 * The event a link that changed no session arrives as: `{ outcome: 'emailConfirmed' |
 * 'emailChangeWaiting' | 'emailChanged', email }`.
 */
export const LINK_EVENT = 'auth:link';

function invoke(command, args = {}) {
  return window.__TAURI_INTERNALS__.invoke(`plugin:tessera|${command}`, args);
}

/**
 * Calls `handler(change)` for every auth-state change; resolves to an unsubscribe function.
 * @param {(change: AuthStateChange) => void} handler
 * @returns {Promise<() => Promise<void>>}
 */
export async function onAuthStateChange(handler) {
  return listen(STATE_EVENT, handler);
}

/**
 * Calls `handler(switch)` when a link would sign in another account than the signed-in
 * one: show both accounts and answer with `resolveAccountSwitch(switch.id, yes)`.
 * @returns {Promise<() => Promise<void>>}
 */
export async function onAccountSwitch(handler) {
  return listen(ACCOUNT_SWITCH_EVENT, handler);
}

/**
 * Calls `handler(outcome)` when a link did something that signs nobody in: a sign-up
 * confirmed after the server's five minutes (`emailConfirmed`: sign in with the password),
 * the first of an email change's two links (`emailChangeWaiting`), or the change done
 * (`emailChanged`).
 * @returns {Promise<() => Promise<void>>}
 */
export async function onLink(handler) {
  return listen(LINK_EVENT, handler);
}

async function listen(event, handler) {
  const internals = window.__TAURI_INTERNALS__;
  const id = await internals.invoke('plugin:event|listen', {
    event,
    target: { kind: 'Any' },
    handler: internals.transformCallback((e) => handler(e.payload)),
  });
  return async () => {
    // As @tauri-apps/api's unlisten does: drop the callback here, then on the Rust side.
    window.__TAURI_EVENT_PLUGIN_INTERNALS__?.unregisterListener(event, id);
    await internals.invoke('plugin:event|unlisten', { event, eventId: id });
  };
}

/** @returns {Promise<SessionView | null>} the session once restored at start. */
export const state = () => invoke('auth_state');
/** Which server the app talks to (and the demo account of the embedded one). */
export const backend = () => invoke('auth_backend');
export const signUp = (email, password) => invoke('auth_sign_up', { email, password });
/** @returns {Promise<SessionView>} */
export const signInWithPassword = (email, password) =>
  invoke('auth_sign_in_with_password', { email, password });
export const signInAnonymously = () => invoke('auth_sign_in_anonymously');
/** Emails a sign-in link (it comes back as a deep link) and a 6-digit code. */
export const signInWithOtp = (email) => invoke('auth_sign_in_with_otp', { email });
export const verifyOtp = (email, token, type = 'email') =>
  invoke('auth_verify_otp', { email, token, type });
/** Opens the provider's page in the system browser (PKCE; back as a deep link). */
export const signInWithOAuth = (provider) => invoke('auth_sign_in_with_oauth', { provider });
/** scope: 'local' (this device), 'global' (all devices), 'others' (all but this one). */
export const signOut = (scope) => invoke('auth_sign_out', { scope });
export const refresh = () => invoke('auth_refresh');
export const user = () => invoke('auth_user');
export const updateUser = ({ email, password, data } = {}) =>
  invoke('auth_update_user', { email, password, data });
export const mfaFactors = () => invoke('auth_mfa_factors');
export const mfaEnroll = (friendlyName) => invoke('auth_mfa_enroll', { friendlyName });
export const mfaVerify = (factorId, code) => invoke('auth_mfa_verify', { factorId, code });
export const mfaUnenroll = (factorId) => invoke('auth_mfa_unenroll', { factorId });
export const preferences = () => invoke('auth_preferences');
export const setPreferences = (preferences) => invoke('auth_set_preferences', { preferences });
/** Opens another window on the same session. */
export const openWindow = () => invoke('auth_open_window');
/** Your devices: `[{ id, createdAt, lastActiveAt, userAgent, ip, aal, isCurrent }]`. */
export const listSessions = () => invoke('auth_list_sessions');
/** Signs one listed session out; this device's own is a local sign-out. */
export const revokeSession = (sessionId) => invoke('auth_revoke_session', { sessionId });
/** The account switch a link asked for and nobody answered yet, or null. */
export const pendingAccountSwitch = () => invoke('auth_pending_account_switch');
/** accept: sign in the link's account; otherwise its session is revoked. */
export const resolveAccountSwitch = (id, accept) =>
  invoke('auth_resolve_account_switch', { id, accept });
/**
 * The base URL of the data proxy, for supabase-js:
 *
 *     createClient(await supabaseUrl(), anonKey, {
 *       global: { fetch: supabaseFetch },
 *       auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
 *     })
 *
 * Calls under `/rest/v1`, `/storage/v1`, `/functions/v1` and `/graphql/v1` go to the
 * project with the user's token, added on the Rust side. It is `http://supabase.localhost`
 * everywhere, because supabase-js accepts only http(s) URLs; `supabaseFetch` sends it to the
 * app's `supabase://` scheme where Tauri serves custom schemes as themselves (Linux, macOS)
 * and is plain `fetch` where Tauri maps them to http already (Windows, Android).
 * @returns {Promise<string>}
 */
export async function supabaseUrl() {
  return 'http://supabase.localhost';
}

/**
 * `fetch` for the data proxy (see `supabaseUrl`).
 * @param {RequestInfo | URL} input
 * @param {RequestInit} [init]
 */
export function supabaseFetch(input, init) {
  if (window.location.protocol !== 'tauri:') return fetch(input, init);
  const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
  if (!url.startsWith('http://supabase.localhost/')) return fetch(input, init);
  const target = 'supabase://localhost/' + url.slice('http://supabase.localhost/'.length);
  return fetch(typeof input === 'string' || input instanceof URL ? target : new Request(target, input), init);
}
/** The event a change of server arrives as (what `backend()` returns). */
export const SERVER_EVENT = 'auth:server-change';
/** Calls `handler(backend)` when the app switches to another server. */
export async function onServerChange(handler) {
  return listen(SERVER_EVENT, handler);
}
/** Checks a project (URL and anon / publishable key) without saving: what it offers. */
export const checkServer = (url, anonKey) => invoke('auth_check_server', { url, anonKey });
/** Checks, saves and switches to a project; its own stored session is restored. */
export const setServer = (url, anonKey) => invoke('auth_set_server', { url, anonKey });
/** Forgets the saved project: back to the embedded demo server (or to none). */
export const resetServer = () => invoke('auth_reset_server');
/** Sends the password-recovery mail; its link signs in with `PASSWORD_RECOVERY`. */
export const resetPasswordForEmail = (email) => invoke('auth_reset_password_for_email', { email });
/** Sign-outs the server has not been told of yet. */
export const pendingSignOuts = () => invoke('auth_pending_sign_outs');
/** Tries the queued sign-outs now; resolves to how many are still waiting. */
export const retrySignOuts = () => invoke('auth_retry_sign_outs');
/** The embedded demo server's sent mail: `[{ id, to, subject, kind, code, hasLink, sentAt }]`. */
export const demoMailbox = () => invoke('auth_demo_mailbox');
/** Opens a demo mail's link as the OS would hand it to the app. */
/** Sends the sign-up confirmation mail again. */
export const resendConfirmation = (email) => invoke('auth_resend_confirmation', { email });
/** The person did something in this window (the app-wide idle timer starts again). */
export const activity = () => invoke('auth_activity');
/** Confirms a change of email with the code mailed to `email` (the current or the new
 * address): `{ status: 'otherAddressPending' }` or `{ status: 'changed', user }`. */
export const confirmEmailChange = (email, code) =>
  invoke('auth_confirm_email_change', { email, code });
export const openDemoMail = (id) => invoke('auth_open_demo_mail', { id });
