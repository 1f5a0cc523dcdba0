// The self-service UI as a person uses it, in headless Chromium: register, change profile and
// password, enrol an authenticator app, sign out, sign in with the second factor, regenerate
// recovery codes, sign out another session, add and remove a passkey. Once with JavaScript and
// once without (minus passkeys). Every page is screenshotted to test-artifacts/e2e/<variant>/.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertPageHygiene,
  currentStep,
  launchBrowser,
  messages,
  screenshotter,
  startServer,
  totp,
} from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) {
    if (process.exitCode) console.error(server.log());
    await server.stop();
  }
});

/** Sign in through the API (another device), to have a second session to sign out. */
async function apiLogin(base, identifier, password) {
  const flow = await (await fetch(`${base}/self-service/login/api`)).json();
  const r = await fetch(`${base}/self-service/login?flow=${flow.id}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' },
    body: JSON.stringify({ method: 'password', identifier, password }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, `API login failed: ${text}`);
  return JSON.parse(text).session_token;
}

/**
 * The whole journey. Steps run in order; once one fails the rest are skipped (they depend on
 * it), so the first failure is the one reported.
 */
function journey(variant, { js }) {
  describe(`self-service UI (${variant})`, () => {
    let ctx;
    let page;
    let shot;
    let failed = false;
    const email = `ada-${variant}-${Date.now()}@example.org`;
    let password = 'correct horse battery staple 1';
    let secret;
    let lastStep; // the last TOTP time step the server accepted (codes are single use)
    let settingsUrl;

    const step = (name, fn) =>
      test(name, async (t) => {
        if (failed) {
          t.skip('an earlier step failed');
          return;
        }
        try {
          await fn(t);
        } catch (e) {
          failed = true;
          if (page) await shot(page, `FAILED-${name.replace(/\W+/g, '-')}`).catch(() => {});
          throw e;
        }
      });

    /** Go to a URL (following redirects) and check the page. */
    async function open(url, label) {
      const resp = await page.goto(url);
      assert.ok(resp, `no response for ${url}`);
      assert.equal(resp.status(), 200, `${url} answered ${resp.status()}`);
      await assertPageHygiene(page, resp);
      if (label) await shot(page, label);
      return resp;
    }

    /** Click a button or link that navigates, wait for the page, check it. */
    async function go(locator, label, { status = 200 } = {}) {
      const [resp] = await Promise.all([page.waitForNavigation(), locator.click()]);
      assert.ok(resp, 'the click did not navigate');
      assert.equal(resp.status(), status, `${page.url()} answered ${resp.status()}`);
      await assertPageHygiene(page, resp);
      if (label) await shot(page, label);
      return resp;
    }

    const section = (name) => page.getByRole('region', { name, exact: true });

    /**
     * A TOTP code the server will accept: codes are single use, so it must be for a later time
     * step than the last accepted one (the server allows one step of clock skew ahead).
     */
    async function nextCode() {
      const s = Math.max(currentStep(), lastStep + 1);
      while (s > currentStep() + 1) await new Promise((r) => setTimeout(r, 500));
      lastStep = s;
      return totp(secret, s);
    }

    before(async () => {
      ctx = await browser.newContext({ javaScriptEnabled: js, viewport: { width: 1100, height: 900 } });
      page = await ctx.newPage();
      shot = screenshotter(variant);
    });

    after(async () => {
      await ctx?.close();
    });

    step('a stored error is shown on the error page', async () => {
      // Logging out without a session stores an error and redirects the browser to /ui/error.
      await page.goto(`${server.base}/self-service/logout/browser`);
      assert.match(page.url(), /\/ui\/error\?id=[0-9a-f-]{36}$/);
      await assertPageHygiene(page);
      assert.match(await page.locator('#error-reason').innerText(), /No active session was found/);
      assert.match(await page.locator('h1').innerText(), /Please sign in/);
      await shot(page, 'error-page');
      // An unknown error id is a clear not-found page, not a crash.
      const resp = await page.goto(`${server.base}/ui/error?id=00000000-0000-4000-8000-000000000000`);
      assert.equal(resp.status(), 404);
      assert.match(await page.locator('h1').innerText(), /Not found/);
    });

    step('welcome page without a session offers sign-in and sign-up', async () => {
      await open(`${server.base}/ui/welcome`, 'welcome-anonymous');
      assert.match(await page.locator('.lead').innerText(), /not signed in/);
      await go(page.getByRole('link', { name: 'Create an account' }), 'registration');
      assert.match(page.url(), /\/ui\/registration\?flow=[0-9a-f-]{36}$/);
      assert.equal(await page.locator('h1').innerText(), 'Create an account');
    });

    step('registration shows field errors next to the field and keeps the input', async () => {
      await page.getByLabel('E-Mail').fill(email);
      await page.getByLabel('Password').fill('short');
      await go(page.getByRole('button', { name: 'Sign up' }), 'registration-error');
      assert.match(page.url(), /\/ui\/registration\?flow=/);
      const pw = page.getByLabel('Password');
      assert.equal(await pw.getAttribute('aria-invalid'), 'true');
      const describedBy = await pw.getAttribute('aria-describedby');
      assert.match(await page.locator(`#${describedBy}`).innerText(), /at least 8 characters/);
      assert.equal(await page.getByLabel('E-Mail').inputValue(), email);
      assert.equal(await pw.inputValue(), '', 'a password is never sent back to the page');
    });

    step('registration succeeds and lands signed in on the welcome page', async () => {
      await page.getByLabel('Password').fill(password);
      await go(page.getByRole('button', { name: 'Sign up' }), 'welcome-after-registration');
      assert.match(page.url(), /\/ui\/welcome$/);
      assert.equal(await page.locator('h1').innerText(), `Welcome, ${email}`);
    });

    step('settings page shows every section', async () => {
      await go(page.getByRole('link', { name: 'Account settings' }), 'settings');
      assert.match(page.url(), /\/ui\/settings\?flow=[0-9a-f-]{36}$/);
      settingsUrl = page.url();
      assert.match(await page.locator('#signed-in-as').innerText(), new RegExp(email.replace(/[.]/g, '\\.')));
      for (const name of ['Profile', 'Password', 'Authenticator app', 'Recovery codes', 'Active sessions']) {
        assert.ok(await section(name).isVisible(), `section ${name} is missing`);
      }
      const sessions = section('Active sessions').locator('li.session');
      assert.equal(await sessions.count(), 1);
      assert.match(await sessions.first().innerText(), /This browser/);
      // The QR code is a real, decodable image.
      const qr = section('Authenticator app').getByRole('img', { name: 'Authenticator app QR code' });
      assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 0), 'QR code image did not load');
    });

    step('change name', async () => {
      const profile = section('Profile');
      await profile.getByLabel('First Name').fill('Ada');
      await profile.getByLabel('Last Name').fill('Lovelace');
      await go(profile.getByRole('button', { name: 'Save' }), 'settings-profile-saved');
      assert.ok((await messages(page)).includes('Your changes have been saved!'), 'no success message');
      assert.equal(await section('Profile').getByLabel('First Name').inputValue(), 'Ada');
      assert.equal(await section('Profile').getByLabel('Last Name').inputValue(), 'Lovelace');
    });

    step('change password (a too short one is refused first)', async () => {
      await section('Password').getByLabel('Password').fill('tiny');
      await go(section('Password').getByRole('button', { name: 'Save' }), 'settings-password-error');
      const pw = section('Password').getByLabel('Password');
      assert.equal(await pw.getAttribute('aria-invalid'), 'true');
      assert.match(await section('Password').locator('.field-messages').innerText(), /at least 8 characters/);
      password = 'a new and even better passphrase 2';
      await pw.fill(password);
      await go(section('Password').getByRole('button', { name: 'Save' }), 'settings-password-saved');
      assert.ok((await messages(page)).includes('Your changes have been saved!'), 'no success message');
    });

    step('enrol an authenticator app by reading the secret from the page', async () => {
      const app = section('Authenticator app');
      secret = (await app.locator('[data-node="totp_secret_key"]').innerText()).trim();
      assert.match(secret, /^[A-Z2-7]{16,}$/, `unexpected secret ${secret}`);
      // A wrong code first: the error is shown at the field.
      await app.getByLabel('Verify code').fill('000000');
      await go(app.getByRole('button', { name: 'Save' }), 'settings-totp-wrong-code');
      assert.match(await section('Authenticator app').locator('.field-messages').innerText(), /authentication code is invalid/);
      // The secret stays the same for this flow.
      assert.equal((await section('Authenticator app').locator('[data-node="totp_secret_key"]').innerText()).trim(), secret);
      lastStep = currentStep();
      await section('Authenticator app').getByLabel('Verify code').fill(totp(secret, lastStep));
      await go(section('Authenticator app').getByRole('button', { name: 'Save' }), 'settings-totp-enrolled');
      assert.ok((await messages(page)).includes('Your changes have been saved!'), 'no success message');
      assert.ok(await section('Authenticator app').getByRole('button', { name: 'Unlink TOTP Authenticator App' }).isVisible());
    });

    step('welcome page shows the profile and two-factor state; sign out', async () => {
      await open(`${server.base}/ui/welcome`, 'welcome-aal2');
      assert.equal(await page.locator('h1').innerText(), 'Welcome, Ada');
      const facts = await page.locator('dl.facts').innerText();
      assert.match(facts, /Last Name\s+Lovelace/);
      assert.match(facts, /Yes \(aal2\)/);
      await go(page.getByRole('link', { name: 'Sign out' }), 'login-after-logout');
      assert.match(page.url(), /\/ui\/login\?flow=[0-9a-f-]{36}$/);
      assert.equal(await page.locator('h1').innerText(), 'Sign in');
      const whoami = await page.request.get(`${server.base}/sessions/whoami`);
      assert.equal(whoami.status(), 401, 'the session is gone after logout');
    });

    step('sign in with password, then the authenticator app', async () => {
      await page.getByLabel('E-Mail').fill(email);
      await page.getByLabel('Password').fill('not the password');
      await go(page.getByRole('button', { name: 'Sign in with password' }), 'login-wrong-password');
      assert.ok((await messages(page)).some((m) => /credentials are invalid/.test(m)), 'no invalid-credentials message');
      await page.getByLabel('Password').fill(password);
      await go(page.getByRole('button', { name: 'Sign in with password' }), 'login-second-factor');
      assert.match(page.url(), /\/ui\/login\?flow=/);
      assert.equal(await page.locator('h1').innerText(), 'Two-factor authentication');
      assert.ok((await messages(page)).includes('Please complete the second authentication challenge.'));
      assert.ok(await section('Authenticator app').isVisible());
      await section('Authenticator app').getByLabel('Authentication code').fill(await nextCode());
      await go(section('Authenticator app').getByRole('button', { name: 'Use Authenticator' }), 'welcome-after-2fa');
      assert.match(page.url(), /\/ui\/welcome$/);
      assert.match(await page.locator('dl.facts').innerText(), /Password \+ Authenticator app/);
    });

    step('settings show the recent security activity: sign-ins and the password change', async () => {
      await open(`${server.base}/ui/settings`, 'settings-activity');
      const activity = section('Recent security activity');
      assert.ok(await activity.isVisible(), 'no "Recent security activity" section');
      // The failed sign-in is stored off the request path: reload until it is listed.
      for (let i = 0; i < 10 && !/Failed/.test(await activity.innerText()); i++) {
        await new Promise((r) => setTimeout(r, 200));
        await open(`${server.base}/ui/settings`);
      }
      const rows = await section('Recent security activity').locator('tr.activity-row').allInnerTexts();
      const text = rows.join('\n');
      assert.match(rows[0], /Second factor \(authenticator app\)/, `newest first: ${text}`);
      assert.match(text, /Sign-in with password/);
      assert.match(text, /Password changed/);
      assert.match(text, /Account created/);
      assert.match(text, /127\.0\.0\.1|::1/);
      assert.match(text, /Failed/, 'the wrong password is listed as a failed sign-in');
      assert.ok(!text.includes(password), 'no password on the page');
      await shot(page, 'settings-activity');
    });

    step('regenerate recovery codes and confirm them', async () => {
      await open(`${server.base}/ui/settings`, 'settings-after-login');
      settingsUrl = page.url();
      await go(section('Recovery codes').getByRole('button', { name: 'Generate new backup recovery codes' }), 'settings-recovery-codes');
      const codes = await section('Recovery codes').locator('ol.codes li').allInnerTexts();
      assert.equal(codes.length, 12);
      for (const c of codes) assert.match(c.trim(), /^[a-z0-9]{8}$/);
      await go(section('Recovery codes').getByRole('button', { name: 'Confirm backup recovery codes' }), 'settings-recovery-confirmed');
      assert.ok((await messages(page)).includes('Your changes have been saved!'), 'no success message');
      assert.match(await section('Recovery codes').innerText(), /12 of 12 backup recovery codes are unused/);
      assert.equal(await section('Recovery codes').locator('ol.codes').count(), 0, 'codes are shown only once');
    });

    step('sign out another session from the session list', async () => {
      await apiLogin(server.base, email, password);
      await open(settingsUrl, 'settings-two-sessions');
      const list = section('Active sessions').locator('li.session');
      assert.equal(await list.count(), 2);
      const other = list.filter({ hasNotText: 'This browser' });
      assert.match(await other.innerText(), /Firefox on Linux/);
      await go(other.getByRole('button', { name: 'Sign out' }), 'settings-session-revoked');
      assert.ok((await messages(page)).includes('The session was signed out.'));
      assert.equal(await section('Active sessions').locator('li.session').count(), 1);
    });

    step('a revoke without the CSRF token is refused', async () => {
      const resp = await page.request.post(`${server.base}/ui/sessions/revoke`, {
        form: { session_id: 'others', csrf_token: 'forged' },
        maxRedirects: 0,
      });
      assert.equal(resp.status(), 403);
      assert.match(await resp.text(), /Cross-Site-Request-Forgery/);
    });

    step('passkey: add, sign in with it, remove', async (t) => {
      await open(settingsUrl);
      const passkeys = section('Passkeys');
      if (!js) {
        // Without JavaScript the passkey button is hidden and a note says why.
        if ((await passkeys.count()) > 0) {
          assert.equal(await passkeys.getByRole('button', { name: 'Add passkey' }).isVisible(), false);
          assert.match(await passkeys.innerText(), /needs JavaScript/);
        }
        t.skip('WebAuthn needs JavaScript');
        return;
      }
      if ((await passkeys.count()) === 0) {
        // TODO(passkey): the settings page offers no passkey nodes in this build; enable the
        // passkey method in the test config once it ships, and this step runs.
        t.skip('TODO: no passkey nodes on the settings page');
        return;
      }
      const cdp = await ctx.newCDPSession(page);
      await cdp.send('WebAuthn.enable');
      const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
      });
      await shot(page, 'settings-passkeys');
      await go(passkeys.getByRole('button', { name: 'Add passkey' }), 'settings-passkey-added');
      assert.ok((await messages(page)).includes('Your changes have been saved!'), `no success message: ${await messages(page)}`);
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      assert.equal(credentials.length, 1, 'the authenticator holds the new passkey');
      assert.equal(await section('Passkeys').getByRole('button', { name: /^Remove/ }).count(), 1);

      // Sign out and back in with the passkey button (then the second factor, if asked for).
      // Passkey autofill (conditional mediation) is switched off for this: a headless browser
      // has no autofill UI, and Chromium's virtual authenticator answers it at random moments.
      await page.addInitScript(() => {
        if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = async () => false;
      });
      await open(`${server.base}/ui/welcome`);
      await go(page.getByRole('link', { name: 'Sign out' }), 'login-passkey-offered');
      assert.match(page.url(), /\/ui\/login\?flow=/);
      await go(page.getByRole('button', { name: 'Sign in with passkey' }), 'after-passkey-login');
      if (/\/ui\/login\?/.test(page.url())) {
        assert.equal(await page.locator('h1').innerText(), 'Two-factor authentication');
        await section('Authenticator app').getByLabel('Authentication code').fill(await nextCode());
        await go(section('Authenticator app').getByRole('button', { name: 'Use Authenticator' }), 'welcome-after-passkey-2fa');
      }
      assert.match(page.url(), /\/ui\/welcome$/);
      assert.match(await page.locator('dl.facts').innerText(), /Signed in with\s+Passkey/);

      await open(`${server.base}/ui/settings`, 'settings-with-passkey');
      const remove = section('Passkeys').getByRole('button', { name: /^Remove/ });
      assert.equal(await remove.count(), 1);
      await go(remove, 'settings-passkey-removed');
      assert.ok((await messages(page)).includes('Your changes have been saved!'));
      assert.equal(await section('Passkeys').getByRole('button', { name: /^Remove/ }).count(), 0);
    });

    step('the settings page fits a 360 px wide screen', async () => {
      await page.setViewportSize({ width: 360, height: 780 });
      await open(settingsUrl, 'settings-360px');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 360px`);
      await open(`${server.base}/ui/welcome`, 'welcome-360px');
      await page.setViewportSize({ width: 1100, height: 900 });
    });

    step('signed-in pages are reachable without a flow id; signed-out settings asks to sign in', async () => {
      const resp = await page.goto(`${server.base}/ui/registration`);
      assert.equal(resp.status(), 200);
      assert.match(page.url(), /\/ui\/welcome$/, 'a signed-in browser is sent on from registration');
      const fresh = await browser.newContext({ javaScriptEnabled: js });
      const p2 = await fresh.newPage();
      await p2.goto(`${server.base}/ui/settings`);
      assert.match(p2.url(), /\/ui\/login\?flow=/);
      await fresh.close();
    });
  });
}

journey('with-js', { js: true });
journey('without-js', { js: false });
