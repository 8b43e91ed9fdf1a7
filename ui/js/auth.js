// The UI's door to the session: the Tessera plugin's guest module, which the plugin
// injects as `window.__TAURI__.tessera` (source: crates/tauri-plugin-tessera/guest-js).
// Everything else in the UI talks to the session through these functions; no module
// calls a command by name.

const tessera = window.__TAURI__.tessera;

export const {
  STATE_EVENT,
  onAuthStateChange,
  onAccountSwitch,
  onLink,
  pendingAccountSwitch,
  resolveAccountSwitch,
  state,
  backend,
  signUp,
  signInWithPassword,
  signInAnonymously,
  signInWithOtp,
  verifyOtp,
  signInWithOAuth,
  signOut,
  refresh,
  user,
  updateUser,
  mfaFactors,
  mfaEnroll,
  mfaVerify,
  mfaUnenroll,
  preferences,
  setPreferences,
  openWindow,
  SERVER_EVENT,
  onServerChange,
  checkServer,
  setServer,
  resetServer,
  resetPasswordForEmail,
  pendingSignOuts,
  retrySignOuts,
  demoMailbox,
  openDemoMail,
  resendConfirmation,
  activity,
  confirmEmailChange,
  supabaseUrl,
  supabaseFetch,
} = tessera;
