// "Your devices" through the data proxy: the page calls the project's Tessera RPCs
// (`supabase/migrations/*_tessera_your_devices.sql`) at `supabaseUrl()`, as any app's UI
// would call its own tables; the Rust side adds the user's token. No token in JavaScript.
// Also the list's rows as the page shows them.
import * as auth from './auth.js';

/** Calls a PostgREST function; an error carries a `code` the UI can explain. */
async function rpc(name, args = {}) {
  const base = await auth.supabaseUrl();
  const r = await auth.supabaseFetch(`${base}/rest/v1/rpc/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(args),
  });
  const text = await r.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: said below */
  }
  if (!r.ok) {
    const e = new Error(body?.message || `The server answered ${r.status}.`);
    // PostgREST: the function does not exist (the migration did not run).
    if (body?.code === 'PGRST202' || r.status === 404) e.code = 'devices_not_configured';
    else if (body?.code === 'proxy_unsupported') e.code = 'unsupported_by_backend';
    else e.code = body?.code || `http_${r.status}`;
    throw e;
  }
  return body;
}

/** `refreshed_at` has no zone (GoTrue writes UTC). */
const utc = (t) => (t && !t.endsWith('Z') && !t.includes('+') ? `${t}Z` : t);

/** The account's sessions, most recently active first; `current` marks this device's. */
export async function listDevices(current) {
  const rows = (await rpc('tessera_list_sessions')) || [];
  return rows.map((r) => ({
    id: r.id,
    createdAt: r.created_at,
    lastActiveAt: utc(r.refreshed_at) || r.updated_at || r.created_at,
    userAgent: r.user_agent,
    ip: r.ip,
    aal: r.aal,
    isCurrent: !!r.is_current || r.id === current,
  }));
}

/** Signs another device's session out at the server; false if it was already gone. */
export async function revokeDevice(id) {
  return (await rpc('tessera_revoke_session', { session_id: id })) === true;
}

/** "3 min ago", "2 h ago", or a date. */
function ago(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'unknown';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

/** A readable name for a session's client from its user agent. */
export function deviceName(ua) {
  if (!ua) return 'Unknown app';
  const m = ua.match(/^([A-Za-z][\w .-]*?)\/[\w.+-]+(?: \(([^)]*)\))?/);
  if (m) return m[2] ? `${m[1]} on ${m[2]}` : m[1];
  return ua.length > 60 ? `${ua.slice(0, 57)}…` : ua;
}

/**
 * One row of "Your devices": the client's name, when it was last active, its address and
 * whether it used two factors; `onSignOut(button)` runs when its button is pressed.
 */
export function deviceItem(d, onSignOut) {
  const li = document.createElement('li');
  li.className = 'device';
  li.dataset.session = d.id;
  const info = document.createElement('div');
  const name = document.createElement('strong');
  name.textContent = deviceName(d.userAgent);
  const details = document.createElement('span');
  details.className = 'hint';
  const parts = [`last active ${ago(d.lastActiveAt)}`];
  if (d.ip) parts.push(d.ip);
  if (d.aal === 'aal2') parts.push('two-factor');
  details.textContent = parts.join(' · ');
  info.append(name, document.createElement('br'), details);
  if (d.isCurrent) {
    const tag = document.createElement('span');
    tag.className = 'tag';
    tag.textContent = 'This device';
    name.after(' ', tag);
  }
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'revoke';
  button.textContent = 'Sign out this device';
  button.addEventListener('click', () => onSignOut(button));
  li.append(info, button);
  return li;
}
