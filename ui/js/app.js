// Tessera's UI: shows the session and drives it through ./auth.js.
import * as auth from './auth.js';
import { fillSettings, followServer, wireSettings } from './settings.js';
import { renderMailbox } from './mailbox.js';
import { deviceItem, deviceName, listDevices, revokeDevice } from './devices.js';
import { onEmailChangeLink, wireEmailChange } from './email-change.js';
import { stopWaitingForOAuth, wireSignIn } from './sign-in.js';

const $ = (id) => document.getElementById(id);
let session = null;
let pendingMfa = null; // factor id while the second sign-in step is open
let enrolling = null; // factor id while setting up an authenticator
let lastActivity = 0; // when this window last told the engine of activity
let countdown = null; // the expiry countdown's next tick, only while it is on screen
let expiryOnScreen = false;
let stateKnown = false;
let restoring = true; // until the restored session (INITIAL_SESSION) is first shown
let switchId = null; // the account switch a link asked for, while its dialog is open
let overlay = null; // 'settings' or 'mailbox' while that view is open
let recovering = false; // signed in from a password-reset link: choosing a new password
let backendInfo = null; // the server the app talks to (auth.backend())
let pendingTimer = null; // re-checks queued sign-outs when the engine next tries them

function show(id, text) {
  const el = $(id);
  el.textContent = text || '';
  el.hidden = !text;
}
const error = (e) => show('error', e ? (e.message || String(e)) : '');
const message = (text) => show('message', text);

function log(change) {
  const li = document.createElement('li');
  const time = new Date(change.at || Date.now()).toLocaleTimeString();
  let text = `${time} ${change.event}`;
  if (change.reason) text += ` (${change.reason})`;
  if (change.error) text += `: ${change.error.code}`;
  if (change.connectivity) text += `: ${change.connectivity.state}`;
  li.textContent = text;
  $('event-log').prepend(li);
}

async function busy(button, work) {
  error(null);
  const buttons = document.querySelectorAll('button');
  buttons.forEach((b) => (b.disabled = true));
  const label = button?.textContent;
  if (button) button.textContent = 'Working…';
  try {
    return await work();
  } catch (e) {
    error(e);
    return undefined;
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    if (button) button.textContent = label;
  }
}

function renderExpiry() {
  if (!session) return;
  const left = session.expiresAt - Math.floor(Date.now() / 1000);
  const minutes = Math.floor(left / 60);
  $('expiry').textContent =
    left <= 0 ? 'expired — refreshing when online' : minutes > 0 ? `valid for ${minutes} min` : 'valid for less than a minute';
}

/** Updates the expiry line when its minute changes, and only while it can be seen: signed
 * in, the window visible, the line scrolled into view. Otherwise nothing runs (a repaint
 * every second cost the web process more CPU than the rest of the idle app). */
function tick() {
  clearTimeout(countdown);
  countdown = null;
  if (!session || pendingMfa || document.hidden || !expiryOnScreen) return;
  renderExpiry();
  const left = session.expiresAt * 1000 - Date.now();
  if (left <= 0) return; // the refreshed session re-renders
  countdown = setTimeout(tick, (left % 60000) + 50);
}

function render() {
  if (!session) recovering = false;
  const signedIn = !!session && !pendingMfa && !recovering;
  const main = !overlay;
  $('settings').hidden = overlay !== 'settings';
  $('mailbox').hidden = overlay !== 'mailbox';
  $('signed-out').hidden = !main || !!session;
  $('mfa-step').hidden = !main || !pendingMfa;
  $('recovery').hidden = !main || !recovering || !!pendingMfa;
  $('signed-in').hidden = !main || !signedIn;
  if (restoring && stateKnown) {
    // The restored state is on screen: scripts/bench reads this mark.
    restoring = false;
    performance.mark('tessera:initial-session');
  }
  if (!session) {
    $('auth-status').textContent = 'Signed out';
    tick();
    return;
  }
  const name = session.user.isAnonymous ? 'an anonymous user' : session.user.email;
  $('auth-status').textContent = `Signed in as ${name}`;
  $('who').textContent = session.user.isAnonymous ? 'Guest (no account)' : session.user.email;
  $('avatar').textContent = initials(session.user);
  $('account-line').textContent = accountLine(session);
  $('details').open = localStorage.getItem('tessera.details') === 'open';
  $('user-id').textContent = session.user.id;
  $('session-id').textContent = session.sessionId;
  $('aal').textContent = session.aal === 'aal2' ? 'two-factor (aal2)' : 'one factor (aal1)';
  renderExpiry();
  tick();
}

/** Two letters for the avatar: from the name in the profile, else from the address. */
function initials(user) {
  if (user.isAnonymous) return '?';
  const name = user.userMetadata?.full_name || user.userMetadata?.name || '';
  const words = name.trim().split(/\s+/).filter(Boolean);
  if (words.length >= 2) return (words[0][0] + words[words.length - 1][0]).toUpperCase();
  const local = (words[0] || user.email.split('@')[0] || '?').replace(/[^\p{L}\p{N}]/gu, '');
  return (local.slice(0, 2) || '?').toUpperCase();
}

const METHODS = {
  password: 'password', otp: 'email code', magiclink: 'email link', oauth: 'a provider',
  anonymous: 'no account (guest)', recovery: 'a password-reset link', 'email/signup': 'a confirmation link',
  invite: 'an invitation', email_change: 'an email-change link', totp: 'authenticator app',
};

/** "Signed in with password and authenticator app · since 14:02" */
function accountLine(s) {
  const methods = (s.signInMethods || []).map((m) => METHODS[m] || m);
  const parts = [];
  if (methods.length) parts.push(`Signed in with ${methods.join(' and ')}`);
  if (s.startedAt) {
    const at = new Date(s.startedAt * 1000);
    const today = at.toDateString() === new Date().toDateString();
    parts.push(`since ${today ? at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : at.toLocaleString()}`);
  }
  return parts.join(' · ');
}

async function renderDevices() {
  const list = $('devices');
  if (!session || pendingMfa) return;
  try {
    const devices = await listDevices(session.sessionId);
    list.replaceChildren(
      ...devices.map((d) =>
        deviceItem(d, (button) =>
          busy(button, async () => {
            // This device's own session: a local sign-out (immediate, even offline).
            if (d.isCurrent) {
              await auth.signOut('local');
              return;
            }
            if (await revokeDevice(d.id)) {
              show('devices-status', `Signed out ${deviceName(d.userAgent)}. It will notice the next time it checks.`);
            } else {
              show('devices-status', 'That device was already signed out.');
            }
            await renderDevices();
          }),
        ),
      ),
    );
    if (!devices.length) show('devices-status', 'No sessions found.');
  } catch (e) {
    list.replaceChildren();
    const why = {
      devices_not_configured: 'This project does not list devices yet: run Tessera’s “Your devices” SQL migration on it.',
      unsupported_by_backend: 'This server cannot list your devices.',
    };
    show('devices-status', why[e.code] || `Could not load your devices: ${e.message || e}`);
  }
}

function renderConnectivity(c) {
  const badge = $('connectivity');
  if (!c || c.state === 'online') {
    badge.hidden = true;
    return;
  }
  badge.hidden = false;
  badge.textContent = `Offline — retrying (attempt ${c.attempt})`;
}

async function afterSignIn(view) {
  session = view;
  show('notice', null);
  // A second factor is needed when the account has one and this session is aal1.
  if (view && view.aal === 'aal1' && !view.user.isAnonymous) {
    try {
      const factors = await auth.mfaFactors();
      pendingMfa = factors.totp.length ? factors.totp[0].id : null;
    } catch {
      pendingMfa = null;
    }
  }
  render();
  await renderFactors();
  await renderDevices();
  if (pendingMfa) $('mfa-code').focus();
}

async function renderFactors() {
  if (!session || session.user.isAnonymous) return;
  try {
    const factors = await auth.mfaFactors();
    const on = factors.totp.length > 0;
    $('mfa-on').hidden = !on;
    $('mfa-none').hidden = on || !!enrolling;
    $('mfa-remove').dataset.factor = on ? factors.totp[0].id : '';
  } catch {
    /* shown when the user acts */
  }
}

function onChange(change) {
  log(change);
  // Signed out while a link's question is open: it no longer holds (the link's session
  // is revoked).
  if (change.event === 'SIGNED_OUT' && switchId) answerAccountSwitch(false, true);
  if (change.event === 'CONNECTIVITY') {
    renderConnectivity(change.connectivity);
    renderPendingSignOuts();
    return;
  }
  if (change.event === 'AUTH_ERROR') {
    const e = change.error;
    const more = { recovery_link_expired: ' Use “Forgot password?” below to get a new link.' };
    error(e ? `${e.message}${more[e.code] || ''}` : 'Something went wrong.');
    return;
  }
  if (change.event === 'SIGNED_OUT') {
    renderPendingSignOuts();
    session = null;
    pendingMfa = null;
    enrolling = null;
    renderConnectivity(null);
    const reasons = {
      revoked: 'You were signed out on another device.',
      expired: 'Your session expired. Please sign in again.',
      refresh_failed: 'Your session could not be renewed. Please sign in again.',
      idle: 'You were signed out after a time without activity.',
    };
    show('notice', reasons[change.reason] || null);
    render();
    return;
  }
  const before = session;
  session = change.session;
  if (change.event === 'PASSWORD_RECOVERY' && session) {
    recovering = true;
    overlay = null;
    $('recovery-email').textContent = session.user.email;
    render();
    $('recovery-password').focus();
    return;
  }
  if (change.event === 'INITIAL_SESSION') {
    // A new server's engine (after a switch), or the first restore.
    pendingMfa = null;
    recovering = false;
    renderPendingSignOuts();
    if (session) {
      afterSignIn(session);
      return;
    }
  }
  if (change.event === 'SIGNED_IN') stopWaitingForOAuth();
  if (change.event === 'SIGNED_IN' && (!before || before.sessionId !== session?.sessionId)) {
    afterSignIn(change.session);
    return;
  }
  if (change.event === 'MFA_CHALLENGE_VERIFIED') {
    pendingMfa = null;
    renderDevices();
  }
  render();
}

/** Tells the engine's app-wide idle timer that the person is here: at most every 15 s
 * per window, and only while signed in (the engine signs out; every window hears it). */
function reportActivity() {
  const now = Date.now();
  if (!session || now - lastActivity < 15000) return;
  lastActivity = now;
  auth.activity().catch(() => {});
}

/** "1 sign-out waiting for the server", while the outbox holds any; checked again when
 * the engine next tries them, on connectivity changes and on focus (no polling). */
async function renderPendingSignOuts() {
  clearTimeout(pendingTimer);
  let pending = [];
  try {
    pending = await auth.pendingSignOuts();
  } catch {
    /* no server, or the keyring is locked: nothing to show */
  }
  const n = pending.length;
  $('pending-sign-outs').hidden = !n;
  $('pending-sign-outs-text').textContent =
    n === 1 ? '1 sign-out is waiting for the server.' : `${n} sign-outs are waiting for the server.`;
  if (n) {
    const next = Math.min(...pending.map((p) => p.nextAttemptAt)); // unix ms
    pendingTimer = setTimeout(renderPendingSignOuts, Math.max(1000, next - Date.now() + 1500));
  }
}

/** The server the app talks to: the banner, and the sign-in screen following it. */
function applyBackend(b, prefs) {
  backendInfo = b;
  $('open-mailbox').hidden = !b.embedded;
  if (!b.url) show('backend', 'No server is connected yet.');
  else if (b.embedded)
    show('backend', `Offline demo server (built-in emulator). Demo account: ${b.demoEmail} / ${b.demoPassword}`);
  else show('backend', `Server: ${b.url}`);
  if (b.embedded && !prefs?.lastEmail && !$('email').value) $('email').value = b.demoEmail;
  followServer(b);
  if (overlay === 'settings') fillSettings(b);
  if (!b.url) openOverlay('settings');
}

function openOverlay(name) {
  overlay = name;
  if (name === 'settings') fillSettings(backendInfo);
  if (name === 'mailbox') renderMailbox(openMail);
  render();
  const first = name === 'settings' ? $('server-url') : $('mailbox-reload');
  first.focus();
}

function closeOverlay() {
  overlay = null;
  render();
}

function openMail(id, button) {
  busy(button, async () => {
    await auth.openDemoMail(id);
    closeOverlay();
  });
}

function wire() {
  wireSettings({
    busy,
    done: (text) => {
      closeOverlay();
      message(text);
    },
  });
  $('details').addEventListener('toggle', () => {
    localStorage.setItem('tessera.details', $('details').open ? 'open' : 'closed');
    tick();
  });
  $('open-settings').addEventListener('click', () => openOverlay('settings'));
  $('close-settings').addEventListener('click', closeOverlay);
  $('open-mailbox').addEventListener('click', () => openOverlay('mailbox'));
  $('close-mailbox').addEventListener('click', closeOverlay);
  $('mailbox-reload').addEventListener('click', () => renderMailbox(openMail));
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && overlay && backendInfo?.url) closeOverlay();
  });
  $('retry-sign-outs').addEventListener('click', () =>
    busy($('retry-sign-outs'), async () => {
      const left = await auth.retrySignOuts();
      await renderPendingSignOuts();
      message(left ? 'The server still cannot be reached; the sign-out stays queued.' : 'The server was told. Nothing is waiting any more.');
    }),
  );
  wireSignIn({
    busy,
    message,
    afterSignIn,
    signedIn: () => !!session,
    redirectUrl: () => backendInfo?.redirectUrl,
  });
  $('recovery-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy($('recovery-save'), async () => {
      await auth.updateUser({ password: $('recovery-password').value });
      $('recovery-password').value = '';
      recovering = false;
      message('Your password is changed. Your other devices were signed out.');
      await afterSignIn(session);
    });
  });
  $('mfa-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy($('mfa-verify'), async () => {
      const view = await auth.mfaVerify(pendingMfa, $('mfa-code').value.trim());
      $('mfa-code').value = '';
      pendingMfa = null;
      session = view;
      render();
    });
  });
  $('mfa-cancel').addEventListener('click', () => busy($('mfa-cancel'), () => auth.signOut('local')));
  for (const scope of ['local', 'global', 'others']) {
    const button = $(`sign-out-${scope}`);
    button.addEventListener('click', () =>
      busy(button, async () => {
        show('sign-out-status', null);
        try {
          const outcome = await auth.signOut(scope);
          renderPendingSignOuts();
          if (outcome.serverNotDone) message(`Signed out on this device, but ${outcome.serverNotDone.message}.`);
          else if (scope === 'others') show('sign-out-status', 'Your other devices were signed out.');
          else if (outcome.hookError)
            message(`Signed out on this device. The app's server could not end the session yet: ${outcome.hookError.message}. It will be retried.`);
          else if (!outcome.serverConfirmed)
            message('Signed out on this device. The server could not be reached; it will be told when it can.');
          else message('Signed out.');
        } catch (e) {
          if (scope === 'others') show('sign-out-status', null);
          throw e;
        }
      }),
    );
  }
  $('refresh').addEventListener('click', () =>
    busy($('refresh'), async () => {
      session = await auth.refresh();
      render();
    }),
  );
  // A phone app has one window (the command refuses another there): no button for it.
  // (An iPad's WebKit says "Macintosh": a touch screen tells it apart.)
  const ua = navigator.userAgent;
  $('new-window').hidden = /Android|iPhone|iPad/.test(ua)
    || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
  $('new-window').addEventListener('click', () => busy($('new-window'), () => auth.openWindow()));
  $('devices-reload').addEventListener('click', () =>
    busy($('devices-reload'), async () => {
      show('devices-status', null);
      await renderDevices();
    }),
  );
  // Coming back to the window: the list may have changed elsewhere.
  window.addEventListener('focus', () => {
    if (session && !pendingMfa) renderDevices();
    renderPendingSignOuts();
  });
  $('password-change').addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy($('change-password'), async () => {
      await auth.updateUser({ password: $('new-password').value });
      $('new-password').value = '';
      message('Password changed. Your other devices were signed out.');
    });
  });
  wireEmailChange({ busy, message });
  $('mfa-enroll').addEventListener('click', () =>
    busy($('mfa-enroll'), async () => {
      const e = await auth.mfaEnroll('Authenticator app');
      enrolling = e.factorId;
      $('mfa-qr').src = `data:image/svg+xml;utf8,${encodeURIComponent(e.qrCodeSvg)}`;
      $('mfa-secret').textContent = e.secret;
      $('mfa-uri').textContent = e.uri;
      $('mfa-enrolling').hidden = false;
      $('mfa-none').hidden = true;
    }),
  );
  $('mfa-enroll-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy($('mfa-enroll-verify'), async () => {
      session = await auth.mfaVerify(enrolling, $('mfa-enroll-code').value.trim());
      enrolling = null;
      $('mfa-enrolling').hidden = true;
      $('mfa-enroll-code').value = '';
      render();
      await renderFactors();
      message('Two-factor sign-in is on. Your other one-factor sessions were signed out.');
    });
  });
  $('mfa-remove').addEventListener('click', () =>
    busy($('mfa-remove'), async () => {
      await auth.mfaUnenroll($('mfa-remove').dataset.factor);
      await renderFactors();
      message('Two-factor sign-in is off.');
    }),
  );
  $('prefs-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy($('save-prefs'), async () => {
      await auth.setPreferences({ idleSignOutMinutes: Number($('idle-minutes').value) || 0 });
      message('Preferences saved.');
    });
  });
  for (const ev of ['mousemove', 'keydown', 'mousedown', 'touchstart']) {
    window.addEventListener(ev, reportActivity, { passive: true });
  }
}

/** A link that signed nobody in (`auth:link`): say what it did. */
function onLink(outcome) {
  if (onEmailChangeLink(outcome, message)) return;
  if (outcome.outcome === 'emailConfirmed') {
    overlay = null;
    render();
    $('email').value = outcome.email;
    message(`Your email address ${outcome.email} is confirmed — sign in with your password.`);
    $('password').focus();
  }
}

/** A link would sign in another account: ask, naming both; nothing changes until then. */
function askAccountSwitch(sw) {
  if (!sw) return;
  switchId = sw.id;
  const name = (u) => (u.isAnonymous ? 'a guest account' : u.email);
  $('switch-current').textContent = name(sw.current);
  $('switch-stay').textContent = name(sw.current);
  $('switch-incoming').textContent = name(sw.incoming);
  const dialog = $('account-switch');
  if (!dialog.open) dialog.showModal();
  $('switch-decline').focus();
}

function answerAccountSwitch(accept, quiet = false) {
  const dialog = $('account-switch');
  const id = switchId;
  switchId = null;
  if (dialog.open) dialog.close();
  if (!id) return;
  busy(null, async () => {
    await auth.resolveAccountSwitch(id, accept);
    if (!accept && !quiet) message('You stayed signed in. The link was not used.');
  });
}

async function main() {
  wire();
  new IntersectionObserver((entries) => {
    expiryOnScreen = entries.some((e) => e.isIntersecting);
    tick();
  }).observe($('expiry'));
  document.addEventListener('visibilitychange', tick);
  await auth.onAuthStateChange(onChange);
  await auth.onAccountSwitch(askAccountSwitch);
  await auth.onLink(onLink);
  $('switch-accept').addEventListener('click', () => answerAccountSwitch(true));
  $('switch-decline').addEventListener('click', () => answerAccountSwitch(false));
  // Escape closes the dialog: that is a "no".
  $('account-switch').addEventListener('cancel', (ev) => {
    ev.preventDefault();
    answerAccountSwitch(false);
  });
  await auth.onServerChange((b) => applyBackend(b));
  const [backend, prefs] = await Promise.all([auth.backend(), auth.preferences()]);
  if (prefs.lastEmail) $('email').value = prefs.lastEmail;
  applyBackend(backend, prefs);
  $('idle-minutes').value = prefs.idleSignOutMinutes || 0;
  session = await auth.state();
  stateKnown = true;
  if (session) await afterSignIn(session);
  else render();
  renderPendingSignOuts();
  askAccountSwitch(await auth.pendingAccountSwitch().catch(() => null));
}

main().catch(error);
