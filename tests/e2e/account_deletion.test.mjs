// Self-service account deletion in the UI, in headless Chromium: register, open the settings
// page, confirm and delete the account: the browser is signed out (sent to the sign-in page,
// the session is gone) and the notice mail with the cancel link arrives at a real SMTP server.

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

describe('account deletion (UI)', () => {
  test('delete the account from the settings page: signed out, notice mailed', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await ctx.newPage();
    const shot = screenshotter('account-deletion');
    const email = `del-${Date.now()}@example.org`;
    try {
      let resp = await page.goto(`${server.base}/ui/registration`);
      assert.equal(resp.status(), 200);
      await page.getByLabel('E-Mail').fill(email);
      await page.getByLabel('Password').fill('correct horse battery staple 1');
      await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign up' }).click()]);
      assert.match(page.url(), /\/ui\/welcome$/);

      resp = await page.goto(`${server.base}/self-service/settings/browser`);
      assert.equal(resp.status(), 200);
      assert.match(page.url(), /\/ui\/settings\?flow=/);
      await assertPageHygiene(page, resp);
      assert.ok(await page.locator('#export-data').isVisible(), 'the data export link is shown');
      await shot(page, 'settings');

      await page.getByLabel('I understand that my account and its data will be deleted').check();
      const [nav] = await Promise.all([
        page.waitForNavigation(),
        page.getByRole('button', { name: 'Delete account' }).click(),
      ]);
      assert.equal(nav.status(), 200);
      assert.match(page.url(), /\/ui\/login\?flow=/, `signed out to the sign-in page, got ${page.url()}`);
      await shot(page, 'signed-out');

      const who = await page.request.get(`${server.base}/sessions/whoami`, { headers: { accept: 'application/json' } });
      assert.equal(who.status(), 401, 'the session ended');

      // The first mail is the address verification of the registration; the notice follows.
      const mails = await sink.waitFor(email, 2);
      const notice = mails.find((m) => /Your account will be deleted/.test(m.subject));
      assert.ok(notice, `no deletion notice among ${JSON.stringify(mails.map((m) => m.subject))}`);
      assert.ok(notice.text.includes(`${server.base}/self-service/login/browser`), `the cancel link is in the mail: ${notice.text}`);
    } finally {
      await ctx.close();
    }
  });
});
