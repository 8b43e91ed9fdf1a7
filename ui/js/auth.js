// The one module that knows Tessera's command and event names (the contract in DESIGN.md).
// Everything else in the UI talks to the session through these functions.

const tauri = window.__TAURI__;

function invoke(command, args = {}) {
  return tauri.core.invoke(command, args);
}

/** The Tauri event every auth-state change arrives as. */
export const STATE_EVENT = 'auth:state-change';

/** Calls `handler(change)` for every auth-state change; returns an unsubscribe function. */
export async function onAuthStateChange(handler) {
  return tauri.event.listen(STATE_EVENT, (event) => handler(event.payload));
}

export const state = () => invoke('auth_state');
export const backend = () => invoke('auth_backend');
export const signUp = (email, password) => invoke('auth_sign_up', { email, password });
export const signInWithPassword = (email, password) =>
  invoke('auth_sign_in_with_password', { email, password });
export const signInAnonymously = () => invoke('auth_sign_in_anonymously');
export const signInWithOtp = (email) => invoke('auth_sign_in_with_otp', { email });
export const verifyOtp = (email, token, type = 'email') => invoke('auth_verify_otp', { email, token, type });
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
export const openWindow = () => invoke('auth_open_window');
/** Your devices: `[{ id, createdAt, lastActiveAt, userAgent, ip, aal, isCurrent }]`. */
export const listSessions = () => invoke('auth_list_sessions');
/** Signs one listed session out; this device's own is a local sign-out. */
export const revokeSession = (sessionId) => invoke('auth_revoke_session', { sessionId });
