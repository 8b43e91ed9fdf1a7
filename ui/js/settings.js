// Settings → Server: connect a Supabase project (checked before it is saved), or go back
// to the built-in demo server; and the sign-in screen following what the server offers.
import * as auth from './auth.js';

const $ = (id) => document.getElementById(id);

const PROVIDER_NAMES = {
  github: 'GitHub', google: 'Google', gitlab: 'GitLab', azure: 'Microsoft', apple: 'Apple',
  bitbucket: 'Bitbucket', discord: 'Discord', facebook: 'Facebook', figma: 'Figma',
  kakao: 'Kakao', keycloak: 'Keycloak', linkedin_oidc: 'LinkedIn', linkedin: 'LinkedIn',
  notion: 'Notion', slack_oidc: 'Slack', slack: 'Slack', spotify: 'Spotify',
  twitch: 'Twitch', twitter: 'X / Twitter', workos: 'WorkOS', zoom: 'Zoom', fly: 'Fly.io',
  snapchat: 'Snapchat',
};
export const providerName = (p) => PROVIDER_NAMES[p] || p;

/** What a checked server offers, in a few lines a person can read. */
export function describe(info) {
  const providers = info.providers.length ? info.providers.map(providerName).join(', ') : 'none';
  return [
    `Connected to a Supabase auth server (${info.version || 'version unknown'}) at ${info.url}.`,
    `Key: ${info.keyKind === 'publishable' ? 'publishable key' : 'legacy anon key'}.`,
    `Email sign-in: ${info.emailEnabled ? 'on' : 'off'}. New accounts: ${info.signupEnabled ? 'open' : 'closed (sign-ups are off)'}.`,
    `Email confirmation: ${info.emailConfirmation ? 'required before the first sign-in' : 'not required'}.`,
    `Sign-in providers: ${providers}. Guest sign-in: ${info.anonymousEnabled ? 'on' : 'off'}.`,
  ];
}

function showCheck(lines, failed = false) {
  const box = $('server-check');
  box.replaceChildren(
    ...lines.map((line) => {
      const p = document.createElement('p');
      p.textContent = line;
      return p;
    }),
  );
  box.classList.toggle('failed', failed);
  box.hidden = !lines.length;
}

/** Fills the view from what the app talks to now. */
export function fillSettings(backend) {
  const locked = backend.locked;
  $('server-url').value = backend.embedded ? '' : backend.url;
  $('anon-key').value = '';
  $('server-url').readOnly = locked;
  $('anon-key').readOnly = locked;
  $('anon-key').hidden = locked;
  $('anon-key').labels.forEach((l) => (l.hidden = locked));
  const hint = backend.anonKeyHint && !backend.embedded ? `Key in use: ${backend.anonKeyHint}` : '';
  $('anon-key-saved').textContent = hint;
  $('anon-key-saved').hidden = !hint;
  $('server-locked').hidden = !locked;
  $('settings-intro').hidden = locked;
  $('save-server').hidden = locked;
  $('check-server').hidden = locked;
  $('use-demo-server').hidden = locked || !backend.embeddedAvailable || backend.embedded;
  $('close-settings').hidden = !backend.url;
  $('settings-intro').textContent = backend.url
    ? 'Connect your Supabase project: its URL and its publishable (or anon) key, from the project’s API settings. Never a secret key.'
    : 'Connect your Supabase project to start: its URL and its publishable (or anon) key, from the project’s API settings. Never a secret key.';
  showCheck(backend.serverSettings && !backend.embedded ? describe(backend.serverSettings) : []);
  $('redirect-url').textContent = backend.redirectUrl;
  $('redirect-help').hidden = backend.embedded || !backend.redirectUrl;
}

/** Copies the redirect URL: the clipboard if the webview allows it, else the text is
 * selected for the person to copy. */
async function copyRedirectUrl() {
  const code = $('redirect-url');
  const button = $('copy-redirect-url');
  try {
    await navigator.clipboard.writeText(code.textContent);
    button.textContent = 'Copied';
  } catch {
    const range = document.createRange();
    range.selectNodeContents(code);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = document.execCommand('copy') ? 'Copied' : 'Selected: press Ctrl+C';
  }
  setTimeout(() => (button.textContent = 'Copy'), 3000);
}

/** The sign-in screen shows only what the server offers (everything, when not known). */
export function followServer(backend) {
  const s = backend.serverSettings;
  const row = $('oauth-providers');
  const providers = s ? s.providers : ['github', 'google'];
  for (const b of [...row.querySelectorAll('button[data-generated]')]) b.remove();
  for (const name of providers) {
    if ($(`oauth-${name}`)) continue;
    const b = document.createElement('button');
    b.type = 'button';
    b.id = `oauth-${name}`;
    b.dataset.provider = name;
    b.dataset.generated = '';
    b.textContent = `Continue with ${providerName(name)}`;
    row.append(b);
  }
  for (const b of row.querySelectorAll('button')) b.hidden = !providers.includes(b.dataset.provider);
  row.hidden = !providers.length;
  const email = !s || s.emailEnabled;
  $('password-form').hidden = !email;
  $('send-code').hidden = !email;
  $('sign-up').hidden = !!s && !s.signupEnabled;
  $('confirm-hint').hidden = !(s && s.emailConfirmation && s.signupEnabled);
  $('anonymous').hidden = !!s && !s.anonymousEnabled;
  $('or-divider').hidden = !email;
}

/** Wires the view's buttons. `busy(button, work)` runs an action; `done(text)` closes it. */
export function wireSettings({ busy, done }) {
  const values = () => [$('server-url').value.trim(), $('anon-key').value.trim()];
  $('check-server').addEventListener('click', () =>
    busy($('check-server'), async () => {
      showCheck([]);
      try {
        showCheck(describe(await auth.checkServer(...values())));
      } catch (e) {
        // Said here, beside the fields; not again at the top of the window.
        showCheck([e.message || String(e)], true);
      }
    }),
  );
  $('server-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy($('save-server'), async () => {
      showCheck([]);
      try {
        const backend = await auth.setServer(...values());
        $('anon-key').value = '';
        done(`Connected to ${backend.url}.`);
      } catch (e) {
        // Said here, beside the fields; not again at the top of the window.
        showCheck([e.message || String(e)], true);
      }
    });
  });
  $('copy-redirect-url').addEventListener('click', copyRedirectUrl);
  $('use-demo-server').addEventListener('click', () =>
    busy($('use-demo-server'), async () => {
      await auth.resetServer();
      done('Using the built-in demo server.');
    }),
  );
}
