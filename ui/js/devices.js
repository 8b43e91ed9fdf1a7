// "Your devices" through the data proxy: the page calls the project's Tessera RPCs
// (`supabase/migrations/*_tessera_your_devices.sql`) at `supabaseUrl()`, as any app's UI
// would call its own tables; the Rust side adds the user's token. No token in JavaScript.
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
