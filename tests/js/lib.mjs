// Shared helpers of the JavaScript client tests: start the idflow binary on free loopback ports
// with a fresh SQLite file or a fresh PostgreSQL database, a small cookie jar around fetch (what
// a browser does for the official client), clients of `@ory/client-fetch` configured the way
// Ory Elements configures them, and RFC 6238 TOTP codes computed with node:crypto.

import { spawn, execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { Configuration, FrontendApi, ResponseError } from '@ory/client-fetch';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PG_ADMIN_URL = (process.env.IDFLOW_TEST_PG_ADMIN_URL || '').trim();
export const PASSWORD = 'correct-horse-battery-9';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function psql(url, sql) {
  execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-q', '-c', sql], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
}

function withDatabase(adminUrl, name) {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * Start `idflow serve --dev` for `engine` ('sqlite' or 'postgres': a new database on the
 * server of IDFLOW_TEST_PG_ADMIN_URL, dropped again by stop()). Resolves once
 * `GET /health/alive` answers.
 */
export async function startServer(engine) {
  const bin = resolve(ROOT, process.env.IDFLOW_BIN || 'target/debug/idflow');
  assert.ok(existsSync(bin), `idflow binary not found at ${bin} (run cargo build first or set IDFLOW_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'idflow-js-'));
  let database;
  let pgName = null;
  if (engine === 'sqlite') {
    database = `sqlite://${join(dir, 'idflow.db')}?mode=rwc`;
  } else {
    assert.ok(PG_ADMIN_URL, 'IDFLOW_TEST_PG_ADMIN_URL is not set');
    pgName = `idflow_js_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
    psql(PG_ADMIN_URL, `CREATE DATABASE "${pgName}"`);
    database = withDatabase(PG_ADMIN_URL, pgName);
  }
  const publicPort = await freePort();
  let adminPort = await freePort();
  while (adminPort === publicPort) adminPort = await freePort();
  const base = `http://127.0.0.1:${publicPort}`;
  const admin = `http://127.0.0.1:${adminPort}`;
  const config = join(dir, 'idflow.yml');
  writeFileSync(
    config,
    [
      'serve:',
      '  public:',
      `    base_url: ${base}/`,
      '  admin:',
      `    base_url: ${admin}/`,
      'hashers:',
      '  argon2: { memory: 1024, iterations: 1, parallelism: 1 }',
      'log:',
      '  level: warn',
      '',
    ].join('\n'),
  );
  const args = [
    'serve', '--dev', '--config', config,
    '--database', database,
    '--public-addr', `127.0.0.1:${publicPort}`,
    '--admin-addr', `127.0.0.1:${adminPort}`,
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env, cwd: dir });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });

  const cleanup = () => {
    rmSync(dir, { recursive: true, force: true });
    if (pgName) {
      try {
        psql(PG_ADMIN_URL, `DROP DATABASE IF EXISTS "${pgName}" WITH (FORCE)`);
      } catch (e) {
        console.warn(`could not drop ${pgName}: ${e.message}`);
      }
    }
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      cleanup();
      throw new Error(`idflow exited early (${JSON.stringify(exited)}):\n${log}`);
    }
    try {
      const r = await fetch(`${base}/health/alive`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      cleanup();
      throw new Error(`idflow did not answer /health/alive within 60 s:\n${log}`);
    }
    await sleep(100);
  }

  return {
    engine,
    base,
    admin,
    log: () => log,
    alive: () => exited === null,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        for (let i = 0; i < 100 && !exited; i++) await sleep(100);
        if (!exited) child.kill('SIGKILL');
      }
      cleanup();
    },
  };
}

/** The engines to run on: SQLite always, PostgreSQL when IDFLOW_TEST_PG_ADMIN_URL is set. */
export const ENGINES = [
  { engine: 'sqlite', skip: false },
  { engine: 'postgres', skip: PG_ADMIN_URL ? false : 'IDFLOW_TEST_PG_ADMIN_URL is not set' },
];

// ---- a browser's cookie handling ------------------------------------------------------------

/**
 * A cookie jar for one origin wrapped around fetch: sends the stored cookies, stores
 * `Set-Cookie` answers (and forgets cookies set to expire), and never follows redirects (the
 * JSON API must not redirect an AJAX client).
 */
export class CookieJar {
  constructor() {
    this.cookies = new Map();
  }

  /** The value of a stored cookie, or undefined. */
  get(name) {
    return this.cookies.get(name);
  }

  names() {
    return [...this.cookies.keys()].sort();
  }

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expired = value === '';
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'max-age' && Number(v.trim()) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v.trim()) <= Date.now()) expired = true;
      }
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  /** A fetch that carries this jar's cookies. */
  fetch = async (input, init = {}) => {
    const headers = new Headers(init.headers || {});
    if (this.cookies.size > 0) {
      headers.set('Cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const response = await fetch(input, { ...init, headers, redirect: 'manual' });
    this.store(response);
    return response;
  };
}

/**
 * Middleware that keeps the status and body of an error answer on the response, so that a
 * failing call shows them (the client's ResponseError says only "Response returned an error
 * code").
 */
const keepErrorBodies = {
  async post({ response }) {
    if (!response.ok) {
      const body = await response.clone().text();
      Object.defineProperty(response, 'details', { value: `HTTP ${response.status}: ${body}`, enumerable: true });
    }
    return response;
  },
};

/**
 * The official client as a single-page app uses it (Ory Elements' configuration: JSON,
 * credentials included), over a cookie jar: browser flows.
 */
export function browserClient(server) {
  const jar = new CookieJar();
  const api = new FrontendApi(
    new Configuration({
      basePath: server.base,
      credentials: 'include',
      headers: { Accept: 'application/json' },
      fetchApi: jar.fetch,
      middleware: [keepErrorBodies],
    }),
  );
  return { api, jar };
}

/** The official client as a native app or a backend uses it: API flows and session tokens. */
export function apiClient(server) {
  return new FrontendApi(
    new Configuration({
      basePath: server.base,
      headers: { Accept: 'application/json' },
      fetchApi: (input, init) => fetch(input, { ...init, redirect: 'manual' }),
      middleware: [keepErrorBodies],
    }),
  );
}

/**
 * Run `call`, expect the client to throw a ResponseError with `status`; returns the parsed
 * JSON body of the error response.
 */
export async function expectStatus(call, status) {
  try {
    const r = await call();
    assert.fail(`expected HTTP ${status}, got success: ${JSON.stringify(r)}`);
  } catch (e) {
    if (!(e instanceof ResponseError)) throw e;
    const text = await e.response.text();
    assert.equal(e.response.status, status, text);
    return text ? JSON.parse(text) : null;
  }
}

// ---- flows --------------------------------------------------------------------------------

export const uniqueEmail = () => `js-${randomUUID()}@example.com`;

/** The node of a flow whose name (input) or id (text, image, script) is `name`. */
export function node(flow, name) {
  const n = flow.ui.nodes.find((x) => x.attributes.name === name || x.attributes.id === name);
  assert.ok(n, `no node ${name} in ${JSON.stringify(flow.ui.nodes.map((x) => x.attributes.name ?? x.attributes.id))}`);
  return n;
}

export const csrf = (flow) => node(flow, 'csrf_token').attributes.value;

/** Message ids of a flow (flow messages and node messages). */
export function messageIds(flow) {
  return [
    ...(flow.ui.messages || []).map((m) => m.id),
    ...flow.ui.nodes.flatMap((n) => (n.messages || []).map((m) => m.id)),
  ];
}

// ---- RFC 6238 TOTP --------------------------------------------------------------------------

export function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = s.toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const idx = alphabet.indexOf(ch);
    if (idx < 0) throw new Error(`invalid base32 character ${JSON.stringify(ch)}`);
    value = (value << 5) | idx;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The 6-digit SHA-1 TOTP of `secret` (base32) for time step `step` (30 s steps). */
export function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(bin % 1_000_000).padStart(6, '0');
}

export const currentStep = () => Math.floor(Date.now() / 1000 / 30);

/**
 * Codes for one secret that the server accepts: each code is single use, so every call takes
 * a later time step than the previous one (the server allows one step ahead of its clock).
 */
export function totpGenerator(secret) {
  let last = -1;
  return async () => {
    const s = Math.max(currentStep(), last + 1);
    while (s > currentStep() + 1) await sleep(500);
    last = s;
    return totp(secret, s);
  };
}
