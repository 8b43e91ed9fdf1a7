// The official @supabase/supabase-js (pinned in package.json) pointed at Tessera's data
// proxy, in Node against the same handler the app's `supabase://` scheme uses
// (`tessera-proxy-serve`: auth_core::proxy::DataProxy over HTTP, with a signed-in engine).
// The client holds no session and no token: every call gets the user's token on the Rust
// side.
//
// Run by `scripts/test` (after the test build) with `node --test`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { createClient } from '@supabase/supabase-js'

const here = path.dirname(fileURLToPath(import.meta.url))
const bin =
  process.env.TESSERA_PROXY_SERVE_BIN ??
  path.join(here, '..', '..', 'target', 'debug', 'tessera-proxy-serve')

let server
let info

class NoWebSocket {
  constructor() {
    throw new Error('Realtime is not used through the data proxy')
  }
}
let supabase

before(async () => {
  server = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, GOTRUE_LOG: 'warn' } })
  const lines = createInterface({ input: server.stdout })
  for await (const line of lines) {
    info = JSON.parse(line)
    break
  }
  // The key given here is replaced by the app's own; no session is kept in JavaScript.
  supabase = createClient(info.url, 'sb_publishable_not_the_real_one', {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    // Realtime does not go through the proxy (ARCHITECTURE.md), and Debian's Node 18 has
    // no WebSocket: a transport that is never used.
    realtime: { transport: NoWebSocket },
  })
})

after(() => {
  server?.stdin.end()
  server?.kill()
})

test('an RPC sees the signed-in user', async () => {
  const { data, error } = await supabase.rpc('tessera_list_sessions')
  assert.equal(error, null)
  assert.equal(data.length, 1)
  assert.equal(data[0].id, info.sessionId)
  assert.equal(data[0].is_current, true)
})

test('an Edge Function gets the user token, not the key the page gave', async () => {
  const { data, error } = await supabase.functions.invoke('whoami', { body: { hello: 'world' } })
  assert.equal(error, null)
  assert.equal(data.claims.sub, info.userId)
  assert.equal(data.claims.email, info.email)
  assert.equal(data.claims.role, 'authenticated')
})

test('a Storage upload and download round-trip binary bytes', async () => {
  const bytes = new Uint8Array(70000).map((_, i) => (i * 31) % 256)
  const bucket = supabase.storage.from('docs')
  const up = await bucket.upload('node/bytes.bin', new Blob([bytes]), { contentType: 'application/octet-stream' })
  assert.equal(up.error, null)
  const down = await bucket.download('node/bytes.bin')
  assert.equal(down.error, null)
  const got = new Uint8Array(await down.data.arrayBuffer())
  assert.deepEqual(got, bytes)
  const again = await bucket.upload('node/bytes.bin', new Blob([bytes]))
  assert.notEqual(again.error, null, 'a second upload without upsert is refused')
})

test('the project errors come back as supabase-js reports them', async () => {
  const { data, error } = await supabase.rpc('no_such_function')
  assert.equal(data, null)
  assert.equal(error.code, 'PGRST202')
})

test('session management does not go through the proxy', async () => {
  const r = await fetch(`${info.url}/auth/v1/user`)
  assert.equal(r.status, 403)
  assert.equal((await r.json()).code, 'proxy_forbidden')
  const { data } = await supabase.auth.getSession()
  assert.equal(data.session, null, 'no session in JavaScript')
})
