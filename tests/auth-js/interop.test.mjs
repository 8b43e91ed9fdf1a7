// The official Supabase auth client (@supabase/auth-js, from npm) against the GoTrue
// emulator: a client we did not write must sign up, sign in, refresh, sign out with each
// scope, verify a magic link and an email code, and finish a PKCE OAuth sign-in.
//
// Run by `scripts/test` (after the emulator binary is built) with `node --test`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { GoTrueClient, GoTrueAdminApi } from '@supabase/auth-js'

const here = path.dirname(fileURLToPath(import.meta.url))
const bin =
  process.env.GOTRUE_EMULATOR_BIN ?? path.join(here, '..', '..', 'target', 'debug', 'gotrue-emulator')

let emulator
let base // GoTrue-style root URL
let anonKey
let serviceKey

before(async () => {
  // --mail-codes: the mails show the one-time code as well as the link (GoTrue's stock
  // templates mail links only; a project that offers codes edits its templates so).
  const args = ['--port', '0', '--bcrypt-cost', '4', '--smtp-max-frequency', '0s', '--mail-codes']
  emulator = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, GOTRUE_LOG: 'warn' },
  })
  const lines = createInterface({ input: emulator.stdout })
  const banner = []
  for await (const line of lines) {
    banner.push(line)
    if (line.startsWith('service_role key:')) break
  }
  base = banner[0].split(' ').pop()
  anonKey = banner.find((l) => l.startsWith('anon key:')).split(/\s+/).pop()
  serviceKey = banner.find((l) => l.startsWith('service_role key:')).split(/\s+/).pop()
})

after(() => emulator?.kill())

/** A storage like the browser's localStorage, one per simulated device. */
function memoryStorage() {
  const map = new Map()
  return {
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => void map.set(k, v),
    removeItem: (k) => void map.delete(k),
    map,
  }
}

/** A client as an app would create it; `prefix` picks GoTrue-style or Supabase-style URLs. */
function device({ flowType = 'implicit', prefix = '' } = {}) {
  const storage = memoryStorage()
  const client = new GoTrueClient({
    url: base + prefix,
    headers: { apikey: anonKey, Authorization: `Bearer ${anonKey}` },
    storage,
    storageKey: 'sb-emulator-auth-token',
    autoRefreshToken: false,
    persistSession: true,
    detectSessionInUrl: false,
    flowType,
  })
  return { client, storage }
}

const PASSWORD = 'correct-horse-9'
let counter = 0
const freshEmail = (tag) => `${tag}-${Date.now()}-${++counter}@example.com`

async function json(pathname) {
  const res = await fetch(base + pathname)
  return res.json()
}
const sessionsOf = (userId) => json(`/_emulator/sessions?user_id=${userId}`)
async function lastMail(email) {
  const mails = await json(`/_emulator/mail?to=${encodeURIComponent(email)}`)
  assert.ok(mails.length > 0, `a mail to ${email}`)
  return mails[mails.length - 1]
}
const sessionIdOf = (session) =>
  JSON.parse(Buffer.from(session.access_token.split('.')[1], 'base64url').toString()).session_id

test('sign up, sign in, read the user (Supabase-style /auth/v1 URL)', async () => {
  const email = freshEmail('signup')
  const { client } = device({ prefix: '/auth/v1' })
  const up = await client.signUp({ email, password: PASSWORD, options: { data: { name: 'Ada' } } })
  assert.equal(up.error, null)
  assert.ok(up.data.session, 'autoconfirm gives a session')
  assert.equal(up.data.user.email, email)
  assert.equal(up.data.user.user_metadata.name, 'Ada')

  const { client: other } = device()
  const signIn = await other.signInWithPassword({ email, password: PASSWORD })
  assert.equal(signIn.error, null)
  const user = await other.getUser()
  assert.equal(user.error, null)
  assert.equal(user.data.user.email, email)

  const wrong = await other.signInWithPassword({ email, password: 'wrong-password' })
  assert.equal(wrong.error.status, 400)
  assert.equal(wrong.error.code, 'invalid_credentials')
})

test('refresh rotates the refresh token and keeps the session', async () => {
  const email = freshEmail('refresh')
  const { client } = device()
  const { data } = await client.signUp({ email, password: PASSWORD })
  const before = data.session
  const refreshed = await client.refreshSession()
  assert.equal(refreshed.error, null)
  assert.notEqual(refreshed.data.session.refresh_token, before.refresh_token)
  assert.equal(sessionIdOf(refreshed.data.session), sessionIdOf(before))
  const current = await client.getSession()
  assert.equal(current.data.session.refresh_token, refreshed.data.session.refresh_token)
  assert.equal((await client.getUser()).error, null)
})

test('sign out: others, local, global', async () => {
  const email = freshEmail('scopes')
  const a = device()
  const b = device()
  const c = device()
  const { data } = await a.client.signUp({ email, password: PASSWORD })
  const userId = data.user.id
  await b.client.signInWithPassword({ email, password: PASSWORD })
  await c.client.signInWithPassword({ email, password: PASSWORD })
  assert.equal((await sessionsOf(userId)).length, 3)

  // others: A keeps its session, B and C are revoked on the server.
  assert.equal((await a.client.signOut({ scope: 'others' })).error, null)
  const left = await sessionsOf(userId)
  assert.deepEqual(left.map((s) => s.id), [sessionIdOf((await a.client.getSession()).data.session)])
  assert.ok((await a.client.getSession()).data.session, 'others keeps the local session')
  const bUser = await b.client.getUser()
  assert.ok(bUser.error, 'B is signed out on the server')

  // local: A's own session ends, locally and on the server.
  assert.equal((await a.client.signOut({ scope: 'local' })).error, null)
  assert.equal((await a.client.getSession()).data.session, null)
  assert.equal((await sessionsOf(userId)).length, 0)

  // global (the default): every session of the user ends.
  const d = device()
  const e = device()
  await d.client.signInWithPassword({ email, password: PASSWORD })
  await e.client.signInWithPassword({ email, password: PASSWORD })
  assert.equal((await sessionsOf(userId)).length, 2)
  assert.equal((await d.client.signOut()).error, null)
  assert.equal((await sessionsOf(userId)).length, 0)
  const eRefresh = await e.client.refreshSession()
  assert.equal(eRefresh.error.code, 'refresh_token_not_found')
})

test('magic link (implicit): token hash from the mail', async () => {
  const email = freshEmail('magic')
  const { client } = device()
  const sent = await client.signInWithOtp({ email, options: { emailRedirectTo: 'tessera://auth/confirm' } })
  assert.equal(sent.error, null)
  const mail = await lastMail(email)
  assert.equal(mail.type, 'magiclink')
  const verified = await client.verifyOtp({ token_hash: mail.token_hash, type: 'magiclink' })
  assert.equal(verified.error, null)
  assert.equal(verified.data.user.email, email)
  assert.ok((await client.getSession()).data.session)
})

test('magic link (PKCE): clicking the link, then exchanging the code', async () => {
  const email = freshEmail('pkcelink')
  const { client } = device({ flowType: 'pkce' })
  await client.signUp({ email, password: PASSWORD })
  await client.signOut({ scope: 'local' })
  const sent = await client.signInWithOtp({ email, options: { emailRedirectTo: 'tessera://auth/callback' } })
  assert.equal(sent.error, null)
  const mail = await lastMail(email)
  assert.ok(mail.token_hash.startsWith('pkce_'))
  const click = await fetch(mail.action_link, { redirect: 'manual' })
  assert.equal(click.status, 303)
  const landing = new URL(click.headers.get('location'))
  const code = landing.searchParams.get('code')
  assert.ok(code, `a code in ${landing}`)
  const exchanged = await client.exchangeCodeForSession(code)
  assert.equal(exchanged.error, null)
  assert.equal(exchanged.data.user.email, email)
})

test('email code (OTP)', async () => {
  const email = freshEmail('code')
  const { client } = device()
  assert.equal((await client.signInWithOtp({ email })).error, null)
  const mail = await lastMail(email)
  assert.match(mail.otp, /^\d{6}$/)
  const wrong = await client.verifyOtp({ email, token: '000000', type: 'email' })
  assert.equal(wrong.error.code, 'otp_expired')
  const verified = await client.verifyOtp({ email, token: mail.otp, type: 'email' })
  assert.equal(verified.error, null)
  assert.equal(verified.data.session.user.email, email)
})

test('OAuth with PKCE through the fake provider', async () => {
  const email = freshEmail('oauth')
  const { client, storage } = device({ flowType: 'pkce' })
  const started = await client.signInWithOAuth({
    provider: 'github',
    options: { redirectTo: 'tessera://auth/callback', skipBrowserRedirect: true },
  })
  assert.equal(started.error, null)
  assert.ok([...storage.map.keys()].some((k) => k.endsWith('code-verifier')), 'verifier kept')

  // Play the browser: authorize → provider page → submit the form → callback → app URL.
  const authorize = await fetch(started.data.url, { redirect: 'manual' })
  assert.equal(authorize.status, 302)
  const pageUrl = authorize.headers.get('location')
  const page = await (await fetch(pageUrl)).text()
  const state = page.match(/name="state" value="([^"]+)"/)[1]
  assert.match(page, /<form method="post"/)
  const submit = await fetch(pageUrl, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ state, email, decision: 'allow' }),
  })
  assert.equal(submit.status, 302)
  const callback = await fetch(submit.headers.get('location'), { redirect: 'manual' })
  assert.equal(callback.status, 302)
  const landing = new URL(callback.headers.get('location'))
  assert.equal(landing.protocol, 'tessera:')
  const code = landing.searchParams.get('code')

  const exchanged = await client.exchangeCodeForSession(code)
  assert.equal(exchanged.error, null)
  assert.equal(exchanged.data.user.email, email)
  assert.equal(exchanged.data.user.app_metadata.provider, 'github')
  assert.ok(exchanged.data.session.provider_token)
  const again = await client.exchangeCodeForSession(code)
  assert.ok(again.error, 'codes are single use')
})

test('anonymous sign-in and the admin API', async () => {
  const { client } = device()
  const anon = await client.signInAnonymously()
  assert.equal(anon.error, null)
  assert.equal(anon.data.user.is_anonymous, true)

  const admin = new GoTrueAdminApi({ url: base, headers: { Authorization: `Bearer ${serviceKey}`, apikey: serviceKey } })
  const email = freshEmail('admin')
  const created = await admin.createUser({ email, password: PASSWORD, email_confirm: true })
  assert.equal(created.error, null)
  const link = await admin.generateLink({ type: 'magiclink', email })
  assert.equal(link.error, null)
  assert.equal(link.data.properties.verification_type, 'magiclink')
  const verified = await client.verifyOtp({ token_hash: link.data.properties.hashed_token, type: 'magiclink' })
  assert.equal(verified.error, null)
  const listed = await admin.listUsers({ page: 1, perPage: 100 })
  assert.equal(listed.error, null)
  assert.ok(listed.data.users.some((u) => u.email === email))
  assert.equal((await admin.deleteUser(created.data.user.id)).error, null)
})
