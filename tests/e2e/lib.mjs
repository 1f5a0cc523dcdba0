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
 * name `localhost` (WebAuthn refuses IP addresses as relying party ids). `config`: more YAML
 * lines (top-level keys the base file does not have).
 */
export async function startServer({ config: extra = [] } = {}) {
  const bin = resolve(ROOT, process.env.IDFLOW_BIN || 'target/debug/idflow');
  assert.ok(existsSync(bin), `idflow binary not found at ${bin} (run cargo build first or set IDFLOW_BIN)`);
  const dir = mkdtempSync(join(tmpdir(), 'idflow-e2e-'));
  const publicPort = await freePort();
  const adminPort = await freePort();
  const base = `http://localhost:${publicPort}`;
  const config = join(dir, 'idflow.yml');
  writeFileSync(
    config,
    [
      'serve:',
      '  public:',
      `    base_url: ${base}/`,
      '  admin:',
      `    base_url: http://127.0.0.1:${adminPort}/`,
      'log:',
      '  level: warn',
      // Every test signs in from the same address: the default per-IP submit limits are off.
      'limits:',
      '  per_ip: { login: 0, registration: 0 }',
      ...extra,
      '',
    ].join('\n'),
  );
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

// ---- a real SMTP server that keeps what it receives -----------------------------------

/**
 * A minimal SMTP server on a free loopback port (plain, no STARTTLS) that records every
 * message: `{ port, mails: [{to, data}], waitFor(address, n), stop() }`.
 */
export async function startMailSink() {
  const { createServer: createTcpServer } = await import('node:net');
  const mails = [];
  const server = createTcpServer((sock) => {
    sock.setEncoding('utf8');
    let buf = '';
    let inData = false;
    let to = [];
    let data = '';
    sock.write('220 sink.test ESMTP\r\n');
    sock.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            mails.push({ to, data });
            sock.write('250 OK\r\n');
          } else {
            data += `${line.startsWith('..') ? line.slice(1) : line}\n`;
          }
          continue;
        }
        const cmd = line.toUpperCase();
        if (cmd.startsWith('EHLO')) sock.write('250-sink.test\r\n250 8BITMIME\r\n');
        else if (cmd.startsWith('MAIL FROM:')) { to = []; sock.write('250 OK\r\n'); }
        else if (cmd.startsWith('RCPT TO:')) { to.push(line.slice(8).trim().replace(/^<|>$/g, '')); sock.write('250 OK\r\n'); }
        else if (cmd === 'DATA') { inData = true; data = ''; sock.write('354 go ahead\r\n'); }
        else if (cmd === 'QUIT') { sock.end('221 bye\r\n'); }
        else sock.write('250 OK\r\n');
      }
    });
    sock.on('error', () => {});
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  return {
    port: server.address().port,
    mails,
    /** The plain data of the messages to `address` once there are `n` (quoted-printable undone). */
    async waitFor(address, n, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const got = mails.filter((m) => m.to.includes(address));
        if (got.length >= n) {
          return got.map((m) => m.data.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))));
        }
        if (Date.now() > deadline) throw new Error(`expected ${n} mail(s) to ${address}, got ${got.length}`);
        await sleep(100);
      }
    },
    stop: () => new Promise((res) => server.close(res)),
  };
}
