// Shared helpers of the UI end-to-end tests: start the idflow binary on free ports with a
// temporary SQLite database, launch Debian's headless Chromium through playwright-core,
// compute TOTP codes (RFC 6238), take screenshots, and check page hygiene (CSP, no inline
// script or style, labelled inputs).

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = resolve(process.env.IDFLOW_E2E_ARTIFACTS || join(ROOT, 'test-artifacts', 'e2e'));

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Start `idflow serve --dev` with a fresh SQLite database. The public base URL uses the host
 * name `localhost` (WebAuthn refuses IP addresses as relying party ids). `mail` (a sink from
 * `startMailSink`) turns on recovery and verification with mail going to it; `extraConfig` (an
 * object) is merged into the configuration.
 */
export async function startServer({ mail = null, extraConfig = {} } = {}) {
  const bin = resolve(ROOT, process.env.IDFLOW_BIN || 'target/debug/idflow');
  assert.ok(existsSync(bin), `idflow binary not found at ${bin} (run cargo build first or set IDFLOW_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'idflow-e2e-'));
  const publicPort = await freePort();
  const adminPort = await freePort();
  const base = `http://localhost:${publicPort}`;
  const config = join(dir, 'idflow.yml');
  const settings = {
    serve: { public: { base_url: `${base}/` }, admin: { base_url: `http://127.0.0.1:${adminPort}/` } },
    log: { level: 'warn' },
    // Every test signs in from the same address: the default per-IP submit limits are off.
    limits: { per_ip: { login: 0, registration: 0, recovery: 0, verification: 0 } },
  };
  if (mail) deepMerge(settings, mailConfig(mail));
  deepMerge(settings, extraConfig);
  // JSON is YAML: the configuration is built as an object so that parts merge.
  writeFileSync(config, JSON.stringify(settings, null, 2));
  const logFile = join(dir, 'server.log');
  const args = [
    'serve', '--dev', '--config', config,
    '--database', `sqlite://${join(dir, 'idflow.db')}?mode=rwc`,
    '--public-addr', `127.0.0.1:${publicPort}`,
    '--admin-addr', `127.0.0.1:${adminPort}`,
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`idflow exited early (${JSON.stringify(exited)}):\n${log}`);
    try {
      const r = await fetch(`http://127.0.0.1:${publicPort}/health/alive`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`idflow did not answer /health/alive within 60 s:\n${log}`);
    }
    await sleep(100);
  }

  return {
    base,
    admin: `http://127.0.0.1:${adminPort}`,
    log: () => log,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        for (let i = 0; i < 100 && !exited; i++) await sleep(100);
        if (!exited) child.kill('SIGKILL');
      }
      writeFileSync(logFile, log);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function mailConfig(sink) {
  return {
    courier: {
      smtp: {
        connection_uri: `smtp://127.0.0.1:${sink.port}/?disable_starttls=true`,
        from_address: 'no-reply@idflow.test',
      },
      worker: { pull_wait: '100ms' },
    },
    selfservice: { flows: { recovery: { enabled: true }, verification: { enabled: true } } },
  };
}

/** Merge `src` into `dst` (objects recursively; other values replace). */
function deepMerge(dst, src) {
  for (const [k, v] of Object.entries(src || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v) && dst[k] && typeof dst[k] === 'object') {
      deepMerge(dst[k], v);
    } else {
      dst[k] = v;
    }
  }
  return dst;
}

// ---- a real SMTP server for the mail the server sends -----------------------------------

/**
 * A real SMTP server (the `smtp-server` package) on a free loopback port that keeps every
 * message, parsed (`to`, `subject`, `text`, `html`). `waitFor(address, count)` polls for mail.
 */
export async function startMailSink() {
  const messages = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((m) => {
          messages.push({
            to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
            subject: m.subject || '',
            text: m.text || '',
            html: m.html || '',
          });
          callback();
        })
        .catch(callback);
    },
  });
  const port = await freePort();
  await new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(port, '127.0.0.1', res);
  });
  return {
    port,
    messages,
    /** Messages to `address` (case-insensitive). */
    to: (address) => messages.filter((m) => m.to.includes(address.toLowerCase())),
    async waitFor(address, count = 1, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const got = messages.filter((m) => m.to.includes(address.toLowerCase()));
        if (got.length >= count) return got;
        if (Date.now() > deadline) {
          throw new Error(`expected ${count} message(s) for ${address}, got ${JSON.stringify(got)}`);
        }
        await sleep(100);
      }
    },
    stop: () => new Promise((res) => server.close(res)),
  };
}

/** The six-digit code of a recovery or verification mail. */
export function codeFrom(message) {
  const m = /\b(\d{6})\b/.exec(message.text);
  assert.ok(m, `no six-digit code in ${JSON.stringify(message.text)}`);
  return m[1];
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export async function launchBrowser() {
  const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  assert.ok(existsSync(executablePath), `Chromium not found at ${executablePath} (apt-get install chromium)`);
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
}

// ---- RFC 6238 TOTP ---------------------------------------------------------------------

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

// ---- screenshots and page checks -------------------------------------------------------

/** Numbered full-page screenshots under test-artifacts/e2e/<name>/. */
export function screenshotter(name) {
  const dir = join(ARTIFACTS, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (page, label) => {
    n += 1;
    const file = join(dir, `${String(n).padStart(2, '0')}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
}

/**
 * What every UI page must satisfy: a strict CSP header, no inline script/style or inline
 * event handlers, every visible form control labelled, unique ids.
 */
export async function assertPageHygiene(page, response) {
  if (response) {
    const h = response.headers();
    const csp = h['content-security-policy'] || '';
    assert.match(csp, /script-src 'self'/, `CSP without script-src 'self': ${csp}`);
    assert.match(csp, /frame-ancestors 'none'/, `CSP without frame-ancestors 'none': ${csp}`);
    assert.doesNotMatch(csp, /unsafe-inline/, 'CSP must not allow inline code');
    assert.ok(h['referrer-policy'], 'no Referrer-Policy header');
    assert.equal(h['x-frame-options'], 'DENY');
  }
  const report = await page.evaluate(() => {
    const problems = [];
    document.querySelectorAll('script:not([src])').forEach(() => problems.push('inline <script>'));
    document.querySelectorAll('style').forEach(() => problems.push('inline <style>'));
    document.querySelectorAll('[style]').forEach((el) => problems.push(`style attribute on <${el.tagName.toLowerCase()}>`));
    document.querySelectorAll('*').forEach((el) => {
      for (const a of el.attributes) if (/^on/i.test(a.name)) problems.push(`inline handler ${a.name}`);
    });
    const ids = new Set();
    document.querySelectorAll('[id]').forEach((el) => {
      if (ids.has(el.id)) problems.push(`duplicate id ${el.id}`);
      ids.add(el.id);
    });
    document.querySelectorAll('input:not([type=hidden]), select, textarea').forEach((el) => {
      const labelled = (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)) || el.closest('label') || el.getAttribute('aria-label');
      if (!labelled) problems.push(`unlabelled control ${el.name}`);
    });
    return { problems, lang: document.documentElement.lang, title: document.title, h1: document.querySelectorAll('h1').length };
  });
  assert.deepEqual(report.problems, [], `page problems on ${page.url()}`);
  assert.equal(report.lang, 'en');
  assert.ok(report.title.length > 0, 'page without <title>');
  assert.equal(report.h1, 1, 'a page has exactly one <h1>');
}

/** Text of all form-level and field messages on the page. */
export async function messages(page) {
  return page.locator('.msg').allInnerTexts();
}

export function readJSON(p) {
  return JSON.parse(readFileSync(p, 'utf8'));
}

// ---- a minimal SMTP server that keeps every message ------------------------------------

