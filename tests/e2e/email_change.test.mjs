// Changing the email in the settings UI (verification on, mail to a real SMTP server): the
// change waits and the page says so, the code mailed to the new address (typed into the
// verification page) applies it, the old address got a notice. With and without JavaScript.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertPageHygiene, launchBrowser, screenshotter, startMailSink, startServer } from './lib.mjs';

let server;
let browser;
let sink;

before(async () => {
  sink = await startMailSink();
  server = await startServer({ mail: sink });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) {
    if (process.exitCode) console.error(server.log());
    await server.stop();
  }
  await sink?.stop();
});

const codeIn = (mail) => (mail.text.match(/^\s*(\d{6})\s*$/m) || [])[1];

for (const js of [true, false]) {
  const variant = js ? 'email-change-js' : 'email-change-nojs';
  describe(`email change in settings (${variant})`, () => {
    test('change → pending shown → code from the mail → email changed', async () => {
      const ctx = await browser.newContext({ javaScriptEnabled: js, viewport: { width: 1100, height: 900 } });
      const page = await ctx.newPage();
      const shot = screenshotter(variant);
      const section = (name) => page.getByRole('region', { name, exact: true });
      const go = async (locator, label) => {
        const [resp] = await Promise.all([page.waitForNavigation(), locator.click()]);
        assert.equal(resp.status(), 200, `${page.url()} answered ${resp.status()}`);
        await assertPageHygiene(page, resp);
        await shot(page, label);
      };
      try {
        const email = `grace-${variant}-${Date.now()}@example.org`;
        const next = `hopper-${variant}-${Date.now()}@example.org`;
        const password = 'correct horse battery staple 1';
        await page.goto(`${server.base}/ui/registration`);
        await page.getByLabel('E-Mail').fill(email);
        await page.getByLabel('Password').fill(password);
        await go(page.getByRole('button', { name: 'Sign up' }), 'registered');
        await sink.waitFor(email, 1);

        await page.goto(`${server.base}/ui/settings`);
        await assertPageHygiene(page);
        await section('Profile').getByLabel('E-Mail').fill(next);
        await go(section('Profile').getByRole('button', { name: 'Save' }), 'change-pending');
        // The old address stays; the page shows the pending change with a cancel button.
        assert.equal(await section('Profile').getByLabel('E-Mail').inputValue(), email);
        const profileText = await section('Profile').innerText();
        assert.match(profileText, new RegExp(`change to ${next.replace(/[.+]/g, '\\$&')} is waiting for verification`));
        assert.ok(await section('Profile').getByRole('button', { name: 'Cancel the pending change' }).isVisible());

        const [codeMail] = await sink.waitFor(next, 1);
        const code = codeIn(codeMail);
        assert.ok(code, `no code in ${codeMail.text}`);
        const notices = await sink.waitFor(email, 2);
        assert.ok(!notices[1].text.includes(code), 'no code in the notice to the old address');

        await go(section('Profile').getByRole('link', { name: 'Enter the verification code' }), 'verification');
        assert.match(page.url(), /\/ui\/verification\?flow=/);
        await page.getByLabel('Verification code').fill(code);
        await go(page.getByRole('button', { name: 'Continue' }).first(), 'verified');
        assert.match(await page.locator('body').innerText(), /successfully verified/i);

        await page.goto(`${server.base}/ui/settings`);
        await assertPageHygiene(page);
        await shot(page, 'settings-after');
        assert.equal(await section('Profile').getByLabel('E-Mail').inputValue(), next);
        assert.equal(await section('Profile').getByRole('button', { name: 'Cancel the pending change' }).count(), 0);
      } catch (e) {
        await shot(page, 'FAILED').catch(() => {});
        throw e;
      } finally {
        await ctx.close();
      }
    });
  });
}
