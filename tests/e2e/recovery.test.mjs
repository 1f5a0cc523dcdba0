// Account recovery and address verification as a person does them, in headless Chromium, with
// the mail read from a real SMTP server: register (a verification mail arrives), see the address
// unverified in settings and ask for a new code there (the link in the mail fills it in, the
// person confirms), then forget the password: "Forgot your password?" → the
// code from the mail → a new password in settings → signed out → signed in with it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertPageHygiene,
  codeFrom,
  launchBrowser,
  messages,
  screenshotter,
  startMailSink,
  startServer,
} from './lib.mjs';

let mail;
let server;
let browser;

before(async () => {
  mail = await startMailSink();
  server = await startServer({ mail });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) {
    if (process.exitCode) console.error(server.log());
    await server.stop();
  }
  await mail?.stop();
});

describe('recovery and verification UI', () => {
  let ctx;
  let page;
  let shot;
  let failed = false;
  const email = `grace-${Date.now()}@example.org`;
  const oldPassword = 'the first passphrase 1';
  const newPassword = 'a recovered passphrase 2';

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

  async function go(locator, label) {
    const [resp] = await Promise.all([page.waitForNavigation(), locator.click()]);
    assert.ok(resp, 'the click did not navigate');
    assert.equal(resp.status(), 200, `${page.url()} answered ${resp.status()}`);
    await assertPageHygiene(page, resp);
    if (label) await shot(page, label);
    return resp;
  }

  before(async () => {
    ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    page = await ctx.newPage();
    shot = screenshotter('recovery');
  });

  after(async () => {
    await ctx?.close();
  });

  step('registration sends a verification mail', async () => {
    const resp = await page.goto(`${server.base}/ui/registration`);
    await assertPageHygiene(page, resp);
    await page.getByLabel('E-Mail').fill(email);
    await page.getByLabel('Password').fill(oldPassword);
    await go(page.getByRole('button', { name: 'Sign up' }), 'registered');
    const [m] = await mail.waitFor(email, 1);
    assert.match(m.subject, /verify/i);
    assert.doesNotMatch(m.text, new RegExp(oldPassword), 'the password is never mailed');
  });

  step('settings lists the address as not verified and sends a new code on request', async () => {
    const resp = await page.goto(`${server.base}/ui/settings`);
    assert.equal(resp.status(), 200);
    await assertPageHygiene(page, resp);
    const addresses = page.getByRole('region', { name: 'Email addresses', exact: true });
    const row = addresses.locator('li.address');
    assert.equal(await row.count(), 1);
    assert.match(await row.innerText(), new RegExp(`${email.replace(/[.]/g, '\\.')}[\\s\\S]*Not verified`));
    assert.match(await row.innerText(), /a verification code was sent/);
    await shot(page, 'settings-unverified');
    await go(addresses.getByRole('button', { name: `Send a verification code to ${email}` }), 'verification-sent');
    assert.match(page.url(), /\/ui\/verification\?flow=[0-9a-f-]{36}$/);
    assert.ok(await page.getByLabel(/code/i).isVisible(), 'no code input after sending');
    const mails = await mail.waitFor(email, 2);
    assert.match(mails[1].subject, /verify/i);
  });

  step('the link in the mail fills the code; confirming verifies the address', async () => {
    const m = mail.to(email)[1];
    const code = codeFrom(m);
    const link = /(https?:\/\/\S+\/self-service\/verification\?\S+)/.exec(m.text)?.[1];
    assert.ok(link, `no verification link in ${m.text}`);
    const resp = await page.goto(link);
    assert.equal(resp.status(), 200);
    await assertPageHygiene(page, resp);
    assert.match(page.url(), /\/ui\/verification\?flow=[0-9a-f-]{36}/);
    assert.equal(await page.getByLabel(/code/i).inputValue(), code, 'the link fills the code in');
    await shot(page, 'verification-filled');
    await go(page.getByRole('button', { name: /continue|submit|verify/i }).first(), 'verified');
    assert.ok(
      (await messages(page)).some((t) => /successfully verified/i.test(t)),
      `no success message: ${await messages(page)}`,
    );
    // "Continue" goes back to the settings page, which now shows the address verified.
    await go(page.getByRole('link', { name: /continue/i }), 'settings-verified');
    assert.match(page.url(), /\/ui\/settings/);
    const row = page.getByRole('region', { name: 'Email addresses', exact: true }).locator('li.address');
    assert.match(await row.innerText(), /Verified/);
    assert.doesNotMatch(await row.innerText(), /Not verified/);
    assert.equal(await row.getByRole('button').count(), 0, 'no send button for a verified address');
  });

  step('signed out, "Forgot your password?" sends a recovery code', async () => {
    await ctx.clearCookies();
    const resp = await page.goto(`${server.base}/ui/login`);
    await assertPageHygiene(page, resp);
    await go(page.getByRole('link', { name: 'Forgot your password?' }), 'recovery-start');
    assert.match(page.url(), /\/ui\/recovery\?flow=[0-9a-f-]{36}$/);
    await page.getByLabel(/e-?mail/i).fill(email);
    await go(page.getByRole('button', { name: /continue|submit|send/i }).first(), 'recovery-code-sent');
    assert.ok(
      (await messages(page)).some((t) => /code has been sent|if the address .* recovery code/i.test(t) || /sent/i.test(t)),
      `no "code sent" message: ${await messages(page)}`,
    );
  });

  step('the code from the mail leads to settings with a privileged session', async () => {
    const mails = await mail.waitFor(email, 3);
    const m = mails[mails.length - 1];
    assert.match(m.subject, /recover/i);
    // A wrong code first: a form error, the flow goes on.
    await page.getByLabel(/code/i).fill('000000');
    await go(page.getByRole('button', { name: /continue|submit/i }).first(), 'recovery-wrong-code');
    assert.ok(
      (await messages(page)).some((t) => /invalid|already used/i.test(t)),
      `no wrong-code message: ${await messages(page)}`,
    );
    await page.getByLabel(/code/i).fill(codeFrom(m));
    await go(page.getByRole('button', { name: /continue|submit/i }).first(), 'recovered-settings');
    assert.match(page.url(), /\/ui\/settings\?flow=[0-9a-f-]{36}$/);
    assert.ok(
      (await messages(page)).some((t) => /successfully recovered your account/i.test(t)),
      `no 1060001 message: ${await messages(page)}`,
    );
  });

  step('set a new password, sign out, sign in with it', async () => {
    const pw = page.getByRole('region', { name: 'Password', exact: true });
    await pw.getByLabel('Password').fill(newPassword);
    await go(pw.getByRole('button', { name: 'Save' }), 'recovered-password-saved');
    assert.ok((await messages(page)).includes('Your changes have been saved!'), 'no success message');
    await ctx.clearCookies();
    // The old password no longer works; the new one does.
    await page.goto(`${server.base}/ui/login`);
    await page.getByLabel('E-Mail').fill(email);
    await page.getByLabel('Password').fill(oldPassword);
    await go(page.getByRole('button', { name: 'Sign in with password' }), 'login-old-password');
    assert.match(page.url(), /\/ui\/login\?flow=/);
    await page.getByLabel('Password').fill(newPassword);
    await go(page.getByRole('button', { name: 'Sign in with password' }), 'login-new-password');
    assert.match(page.url(), /\/ui\/welcome$/);
    assert.equal(await page.locator('h1').innerText(), `Welcome, ${email}`);
  });
});
