// The @supabase/auth-js side of the side-by-side benchmarks (BENCHMARKS.md). The Rust
// orchestrator (`tessera-bench`, run by scripts/bench) starts one GoTrue emulator, runs
// Tessera's scenarios and calls this script for the same scenarios with the official
// client. Each command prints one JSON line.
//
//   node bench.mjs <command> [args]   with BENCH_URL, BENCH_ANON, BENCH_EMAIL, BENCH_PASSWORD
import { mock } from 'node:test'
import fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { GoTrueClient } from '@supabase/auth-js'

const url = process.env.BENCH_URL
const anonKey = process.env.BENCH_ANON
const email = process.env.BENCH_EMAIL
const password = process.env.BENCH_PASSWORD
const storageKey = 'sb-bench-auth-token'

function memoryStorage() {
  const map = new Map()
  return {
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => void map.set(k, v),
    removeItem: (k) => void map.delete(k),
  }
}

/** A storage in one JSON file, shared by processes (what an Electron app might use). */
function fileStorage(file) {
  const read = () => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'))
    } catch {
      return {}
    }
  }
  return {
    getItem: (k) => read()[k] ?? null,
    setItem: (k, v) => fs.writeFileSync(file, JSON.stringify({ ...read(), [k]: v })),
    removeItem: (k) => {
      const all = read()
      delete all[k]
      fs.writeFileSync(file, JSON.stringify(all))
    },
  }
}

function client(storage, { autoRefreshToken = false, serverUrl = url } = {}) {
  return new GoTrueClient({
    url: serverUrl,
    headers: { apikey: anonKey, Authorization: `Bearer ${anonKey}` },
    storage,
    storageKey,
    autoRefreshToken,
    persistSession: true,
    detectSessionInUrl: false,
  })
}

async function emulator(method, path, body) {
  const r = await fetch(url + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  })
  return r.status === 204 ? null : r.json()
}

async function signIn(c) {
  const { error } = await c.signInWithPassword({ email, password })
  if (error) throw error
}

/** Marks the stored session as expired (auth-js decides by the stored `expires_at`). */
function expire(storage) {
  const s = JSON.parse(storage.getItem(storageKey))
  s.expires_at = Math.floor(Date.now() / 1000) - 10
  storage.setItem(storageKey, JSON.stringify(s))
}

/** Moves the mocked client clock and the emulator's clock together (the server stamps
 * `expires_at`, which auth-js trusts). */
async function tick(ms) {
  mock.timers.tick(ms)
  await emulator('POST', '/_emulator/time', { advance_ms: ms })
}

function percentile(sorted, p) {
  return sorted[Math.round((sorted.length - 1) * p)]
}

const commands = {
  // N concurrent getSession() calls on an expired session: refresh requests at the server.
  async coalesce(n) {
    const storage = memoryStorage()
    const c = client(storage)
    await signIn(c)
    expire(storage)
    await emulator('DELETE', '/_emulator/stats')
    const results = await Promise.all(Array.from({ length: Number(n) }, () => c.getSession()))
    const stats = await emulator('GET', '/_emulator/stats')
    const failed = results.filter((r) => r.error || !r.data.session).length
    return { refreshRequests: stats.refresh_token_grants, reuses: stats.refresh_token_reuses, failed }
  },

  // Signs in and stores the session in FILE (for the two-process and restore scenarios).
  async 'save-session'(file) {
    const c = client(fileStorage(file))
    await signIn(c)
    return { ok: true }
  },

  // One process of the two-process scenario: a valid token from an expired stored session.
  async 'refresh-file'(file) {
    const storage = fileStorage(file)
    const c = client(storage)
    const { data, error } = await c.getSession()
    return { ok: !error && !!data.session, error: error?.code ?? null }
  },

  // Marks FILE's session expired.
  async 'expire-file'(file) {
    expire(fileStorage(file))
    return { ok: true }
  },

  // Timer wake-ups of a signed-in idle client over one simulated hour (mocked timers and
  // Date), and refresh requests over six simulated hours.
  async idle() {
    const storage = memoryStorage()
    const c = client(storage)
    await signIn(c)
    let wakeups = 0
    const realSetInterval = globalThis.setInterval
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() })
    const patched = globalThis.setInterval
    globalThis.setInterval = (fn, ms, ...rest) =>
      patched(() => {
        wakeups++
        return fn(...rest)
      }, ms)
    await c.startAutoRefresh()
    await sleep(20)
    await emulator('DELETE', '/_emulator/stats')
    const start = wakeups
    let firstHour = 0
    for (let t = 0; t < 6 * 120; t++) {
      await tick(30_000)
      await sleep(5) // real time for any refresh request to complete
      if (t === 119) firstHour = wakeups - start
    }
    const stats = await emulator('GET', '/_emulator/stats')
    await emulator('POST', '/_emulator/time', { advance_ms: -6 * 3600_000 })
    await c.stopAutoRefresh()
    mock.timers.reset()
    globalThis.setInterval = realSetInterval
    return { wakeupsPerHour: firstHour, refreshesPerHour: stats.refresh_token_grants / 6 }
  },

  // Sign-out: call → SIGNED_OUT delivered and the stored session gone, per run.
  async signout(scope, offline, runs) {
    const samples = []
    let signedOut = 0
    const errors = {}
    for (let i = 0; i < Number(runs); i++) {
      const storage = memoryStorage()
      const c = client(storage)
      await signIn(c)
      if (offline === 'offline') {
        await emulator('POST', '/_emulator/faults', { path: '/logout', drop: true, times: 1 })
      }
      let eventAt = null
      const started = performance.now()
      const { data: sub } = c.onAuthStateChange((event) => {
        if (event === 'SIGNED_OUT' && eventAt === null) eventAt = performance.now()
      })
      const { error } = await c.signOut({ scope })
      const returnedAt = performance.now()
      sub.subscription.unsubscribe()
      if (error) errors[error.name] = (errors[error.name] ?? 0) + 1
      if (eventAt !== null && storage.getItem(storageKey) === null) {
        signedOut++
        samples.push(eventAt - started)
      } else {
        samples.push(returnedAt - started) // for "others": the call's duration
      }
      await emulator('DELETE', '/_emulator/faults')
      if (storage.getItem(storageKey) !== null) await c.signOut({ scope: 'local' })
    }
    samples.sort((a, b) => a - b)
    return {
      runs: Number(runs),
      signedOutLocally: signedOut,
      medianMs: percentile(samples, 0.5),
      p99Ms: percentile(samples, 0.99),
      errors,
    }
  },

  // Device B signs out globally; how long until device A (auto-refresh on, idle) emits
  // SIGNED_OUT, in simulated seconds. Also: does A's getSession() still return a session?
  async revocation() {
    const a = client(memoryStorage())
    const b = client(memoryStorage())
    await signIn(a)
    await signIn(b)
    let signedOutAt = null
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.now() })
    const t0 = Date.now()
    a.onAuthStateChange((event) => {
      if (event === 'SIGNED_OUT' && signedOutAt === null) signedOutAt = Date.now()
    })
    await a.startAutoRefresh()
    await sleep(20)
    const { error } = await b.signOut({ scope: 'global' })
    if (error) throw error
    const { data } = await a.getSession()
    const stillSignedIn = !!data.session
    let ticks = 0
    for (; ticks < 4 * 120 && signedOutAt === null; ticks++) {
      await tick(30_000)
      await sleep(50) // real time for a refresh request and its events
    }
    await emulator('POST', '/_emulator/time', { advance_ms: -ticks * 30_000 })
    await a.stopAutoRefresh()
    mock.timers.reset()
    return {
      getSessionStillReturnsSession: stillSignedIn,
      simulatedSecondsUntilSignedOut: signedOutAt === null ? null : (signedOutAt - t0) / 1000,
    }
  },

  // Restores the session in FILE and prints as soon as INITIAL_SESSION arrives.
  async restore(file, serverUrl) {
    const c = client(fileStorage(file), { serverUrl: serverUrl ?? url })
    const session = await new Promise((resolve) => {
      c.onAuthStateChange((event, s) => {
        if (event === 'INITIAL_SESSION') resolve(s)
      })
    })
    return { initialSession: !!session }
  },

  // Stays signed in and idle (auto-refresh on) until killed: for RSS.
  async idleProcess(file) {
    const c = client(fileStorage(file), { autoRefreshToken: true })
    await c.startAutoRefresh()
    const { data } = await c.getSession()
    console.log(JSON.stringify({ ready: !!data.session }))
    // auth-js unrefs its ticker: keep the process alive the way an app's UI loop would.
    setInterval(() => {}, 2 ** 30)
    await new Promise(() => {})
  },
}

const [command, ...args] = process.argv.slice(2)
if (!commands[command]) {
  console.error(`unknown command ${command}; one of ${Object.keys(commands).join(', ')}`)
  process.exit(2)
}
const result = await commands[command](...args)
console.log(JSON.stringify(result))
process.exit(0)
