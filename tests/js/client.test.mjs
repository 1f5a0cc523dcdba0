// The official JavaScript client `@ory/client-fetch` against a real idflow server, on SQLite
// and (with IDFLOW_TEST_PG_ADMIN_URL) PostgreSQL, in both ways frontends use it:
//  - browser flows, as a single-page app (Ory Elements) does: cookies kept between calls and the
//    flow's csrf_token in every submit;
//  - API flows, as a native app or a backend does: session tokens.
// Each style walks one account through registration, whoami, settings (profile, password,
// TOTP with codes computed here), second-factor login, the session list and logout.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ENGINES, PASSWORD, apiClient, browserClient, csrf, expectStatus, messageIds, node, startServer, totp,
  totpGenerator, uniqueEmail,
} from './lib.mjs';

const NEW_PASSWORD = 'another-Horse-battery-42';
const methods = (session) => session.authentication_methods.map((m) => m.method);

test('TOTP helper matches the RFC 6238 test vector', () => {
  // Secret "12345678901234567890", T = 59 s: 94287082 (8 digits) -> 287082.
  assert.equal(totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 1), '287082');
});

for (const { engine, skip } of ENGINES) {
  describe(`@ory/client-fetch on ${engine}`, { skip }, () => {
    let server;
    before(async () => {
      server = await startServer(engine);
    });
    after(async () => {
      const alive = server?.alive();
      await server?.stop();
      assert.ok(alive !== false, `idflow died during the tests:\n${server?.log()}`);
    });

    describe('browser flows (cookie jar + CSRF token)', () => {
      const email = uniqueEmail();
      let browser; // { api, jar }
      let nextCode;

      test('registration signs the browser in', async () => {
        browser = browserClient(server);
        const flow = await browser.api.createBrowserRegistrationFlow();
        assert.equal(flow.type, 'browser');
        assert.ok(browser.jar.names().some((n) => n.startsWith('csrf_token')), `no CSRF cookie: ${browser.jar.names()}`);
        const body = {
          method: 'password',
          password: PASSWORD,
          traits: { email, name: { first: 'Ada', last: 'Byron' } },
          csrf_token: csrf(flow),
        };
        // Without the CSRF cookie (another browser) the submit is refused.
        const stranger = browserClient(server);
        const refused = await expectStatus(
          () => stranger.api.updateRegistrationFlow({ flow: flow.id, updateRegistrationFlowBody: body }),
          403,
        );
        assert.equal(refused.error.id, 'security_csrf_violation');

        const done = await browser.api.updateRegistrationFlow({ flow: flow.id, updateRegistrationFlowBody: body });
        assert.equal(done.identity.traits.email, email);
        assert.equal(done.session.active, true);
        assert.equal(done.session_token, undefined, 'browser flows set a cookie, never a token');
        assert.ok(browser.jar.get('ory_kratos_session'), 'no session cookie');
      });

      test('whoami with the session cookie', async () => {
        const s = await browser.api.toSession();
        assert.equal(s.identity.traits.email, email);
        assert.equal(s.authenticator_assurance_level, 'aal1');
        assert.deepEqual(methods(s), ['password']);
        await expectStatus(() => browserClient(server).api.toSession(), 401);
      });

      test('settings: profile', async () => {
        const flow = await browser.api.createBrowserSettingsFlow();
        assert.equal(node(flow, 'traits.email').attributes.value, email);
        const done = await browser.api.updateSettingsFlow({
          flow: flow.id,
          updateSettingsFlowBody: {
            method: 'profile',
            traits: { email, name: { first: 'Ada', last: 'Lovelace' } },
            csrf_token: csrf(flow),
          },
        });
        assert.equal(done.state, 'success');
        assert.equal((await browser.api.toSession()).identity.traits.name.last, 'Lovelace');
      });

      test('settings: password, then login with the new one', async () => {
        const flow = await browser.api.createBrowserSettingsFlow();
        const done = await browser.api.updateSettingsFlow({
          flow: flow.id,
          updateSettingsFlowBody: { method: 'password', password: NEW_PASSWORD, csrf_token: csrf(flow) },
        });
        assert.equal(done.state, 'success');

        const other = browserClient(server);
        const login = await other.api.createBrowserLoginFlow();
        const bad = await expectStatus(
          () => other.api.updateLoginFlow({
            flow: login.id,
            updateLoginFlowBody: { method: 'password', identifier: email, password: PASSWORD, csrf_token: csrf(login) },
          }),
          400,
        );
        assert.ok(messageIds(bad).includes(4000006), JSON.stringify(bad.ui));
        const again = await other.api.getLoginFlow({ id: login.id });
        const ok = await other.api.updateLoginFlow({
          flow: login.id,
          updateLoginFlowBody: { method: 'password', identifier: email, password: NEW_PASSWORD, csrf_token: csrf(again) },
        });
        assert.equal(ok.session.identity.traits.email, email);
        assert.equal((await other.api.toSession()).identity.traits.email, email);
      });

      test('settings: TOTP enrolment with a code computed here', async () => {
        const flow = await browser.api.createBrowserSettingsFlow();
        const secret = node(flow, 'totp_secret_key').attributes.text.context.secret;
        assert.match(secret, /^[A-Z2-7]+=*$/);
        assert.match(node(flow, 'totp_qr').attributes.src, /^data:image\/png;base64,/);
        const wrong = await expectStatus(
          () => browser.api.updateSettingsFlow({
            flow: flow.id,
            updateSettingsFlowBody: { method: 'totp', totp_code: '000000', csrf_token: csrf(flow) },
          }),
          400,
        );
        assert.ok(messageIds(wrong).includes(4000008), JSON.stringify(wrong.ui));
        nextCode = totpGenerator(secret);
        const done = await browser.api.updateSettingsFlow({
          flow: flow.id,
          updateSettingsFlowBody: { method: 'totp', totp_code: await nextCode(), csrf_token: csrf(flow) },
        });
        assert.equal(done.state, 'success');
        assert.ok(done.ui.nodes.some((n) => n.attributes.name === 'totp_unlink'), 'no totp_unlink after enrolment');
        assert.equal((await browser.api.toSession()).authenticator_assurance_level, 'aal2');
      });

      test('login: password, then the TOTP second factor', async () => {
        const other = browserClient(server);
        const login = await other.api.createBrowserLoginFlow();
        // The password is right; the browser is sent on to the second factor (an SPA follows
        // `redirect_browser_to` by creating the aal2 flow itself).
        const first = await expectStatus(
          () => other.api.updateLoginFlow({
            flow: login.id,
            updateLoginFlowBody: { method: 'password', identifier: email, password: NEW_PASSWORD, csrf_token: csrf(login) },
          }),
          422,
        );
        assert.equal(first.error.id, 'browser_location_change_required');
        assert.equal(first.redirect_browser_to, `${server.base}/self-service/login/browser?aal=aal2`);
        assert.ok(other.jar.get('ory_kratos_session'), 'the aal1 session cookie is set');
        const needed = await expectStatus(() => other.api.toSession(), 403);
        assert.equal(needed.error.id, 'session_aal2_required');

        const aal2 = await other.api.createBrowserLoginFlow({ aal: 'aal2' });
        assert.equal(aal2.requested_aal, 'aal2');
        const done = await other.api.updateLoginFlow({
          flow: aal2.id,
          updateLoginFlowBody: { method: 'totp', totp_code: await nextCode(), csrf_token: csrf(aal2) },
        });
        assert.equal(done.session.authenticator_assurance_level, 'aal2');
        assert.deepEqual(methods(done.session), ['password', 'totp']);
        const s = await other.api.toSession();
        assert.equal(s.authenticator_assurance_level, 'aal2');
        assert.equal(s.identity.traits.email, email);
      });

      test('sessions: list the others and revoke them', async () => {
        const others = await browser.api.listMySessions();
        assert.ok(others.length >= 1, 'the second-factor login is another session');
        const current = await browser.api.toSession();
        assert.ok(!others.some((s) => s.id === current.id), 'the list holds the other sessions only');
        const res = await browser.api.disableMyOtherSessions();
        assert.equal(res.count, others.length);
        assert.deepEqual(await browser.api.listMySessions(), []);
      });

      test('logout ends the session and clears the cookie', async () => {
        const logout = await browser.api.createBrowserLogoutFlow();
        assert.ok(logout.logout_token);
        assert.ok(logout.logout_url.startsWith(`${server.base}/self-service/logout?token=`), logout.logout_url);
        await browser.api.updateLogoutFlow({ token: logout.logout_token });
        assert.equal(browser.jar.get('ory_kratos_session'), undefined);
        await expectStatus(() => browser.api.toSession(), 401);
      });
    });

    describe('API flows (session tokens)', () => {
      const api = () => apiClient(server);
      const email = uniqueEmail();
      let token;
      let nextCode;

      async function passwordLogin(password) {
        const flow = await api().createNativeLoginFlow();
        return api().updateLoginFlow({
          flow: flow.id,
          updateLoginFlowBody: { method: 'password', identifier: email, password },
        });
      }

      test('registration returns a session token', async () => {
        const flow = await api().createNativeRegistrationFlow();
        assert.equal(flow.type, 'api');
        const done = await api().updateRegistrationFlow({
          flow: flow.id,
          updateRegistrationFlowBody: {
            method: 'password',
            password: PASSWORD,
            traits: { email, name: { first: 'Grace', last: 'Murray' } },
          },
        });
        assert.equal(done.identity.traits.email, email);
        assert.ok(done.session_token, 'no session token');
        token = done.session_token;
      });

      test('whoami with the session token', async () => {
        const s = await api().toSession({ xSessionToken: token });
        assert.equal(s.identity.traits.email, email);
        assert.equal(s.authenticator_assurance_level, 'aal1');
        await expectStatus(() => api().toSession({ xSessionToken: `${token}x` }), 401);
      });

      test('settings: profile', async () => {
        const flow = await api().createNativeSettingsFlow({ xSessionToken: token });
        const done = await api().updateSettingsFlow({
          flow: flow.id,
          xSessionToken: token,
          updateSettingsFlowBody: { method: 'profile', traits: { email, name: { first: 'Grace', last: 'Hopper' } } },
        });
        assert.equal(done.state, 'success');
        assert.equal((await api().toSession({ xSessionToken: token })).identity.traits.name.last, 'Hopper');
      });

      test('settings: password, then login with the new one', async () => {
        const flow = await api().createNativeSettingsFlow({ xSessionToken: token });
        const done = await api().updateSettingsFlow({
          flow: flow.id,
          xSessionToken: token,
          updateSettingsFlowBody: { method: 'password', password: NEW_PASSWORD },
        });
        assert.equal(done.state, 'success');
        const bad = await expectStatus(() => passwordLogin(PASSWORD), 400);
        assert.ok(messageIds(bad).includes(4000006), JSON.stringify(bad.ui));
        const ok = await passwordLogin(NEW_PASSWORD);
        assert.ok(ok.session_token);
        assert.equal((await api().toSession({ xSessionToken: ok.session_token })).identity.traits.email, email);
      });

      test('settings: TOTP enrolment with a code computed here', async () => {
        const flow = await api().createNativeSettingsFlow({ xSessionToken: token });
        const secret = node(flow, 'totp_secret_key').attributes.text.context.secret;
        nextCode = totpGenerator(secret);
        const wrong = await expectStatus(
          () => api().updateSettingsFlow({
            flow: flow.id,
            xSessionToken: token,
            updateSettingsFlowBody: { method: 'totp', totp_code: '000000' },
          }),
          400,
        );
        assert.ok(messageIds(wrong).includes(4000008), JSON.stringify(wrong.ui));
        const done = await api().updateSettingsFlow({
          flow: flow.id,
          xSessionToken: token,
          updateSettingsFlowBody: { method: 'totp', totp_code: await nextCode() },
        });
        assert.equal(done.state, 'success');
        assert.equal((await api().toSession({ xSessionToken: token })).authenticator_assurance_level, 'aal2');
      });

      test('login: password, then the TOTP second factor', async () => {
        const first = await passwordLogin(NEW_PASSWORD);
        const aal1 = first.session_token;
        const needed = await expectStatus(() => api().toSession({ xSessionToken: aal1 }), 403);
        assert.equal(needed.error.id, 'session_aal2_required');
        const flow = await api().createNativeLoginFlow({ aal: 'aal2', xSessionToken: aal1 });
        assert.equal(flow.requested_aal, 'aal2');
        const code = await nextCode();
        const done = await api().updateLoginFlow({
          flow: flow.id,
          xSessionToken: aal1,
          updateLoginFlowBody: { method: 'totp', totp_code: code },
        });
        assert.equal(done.session.authenticator_assurance_level, 'aal2');
        assert.deepEqual(methods(done.session), ['password', 'totp']);
        const s = await api().toSession({ xSessionToken: done.session_token });
        assert.equal(s.identity.traits.email, email);
        assert.equal(s.authenticator_assurance_level, 'aal2');

        // The same code is not accepted twice.
        const again = (await passwordLogin(NEW_PASSWORD)).session_token;
        const flow2 = await api().createNativeLoginFlow({ aal: 'aal2', xSessionToken: again });
        const replay = await expectStatus(
          () => api().updateLoginFlow({
            flow: flow2.id,
            xSessionToken: again,
            updateLoginFlowBody: { method: 'totp', totp_code: code },
          }),
          400,
        );
        assert.ok(messageIds(replay).includes(4000008), JSON.stringify(replay.ui));
      });

      test('sessions: list the others and revoke one', async () => {
        const others = await api().listMySessions({ xSessionToken: token });
        assert.ok(others.length >= 2, `expected the later logins in ${JSON.stringify(others.map((s) => s.id))}`);
        const current = await api().toSession({ xSessionToken: token });
        assert.ok(!others.some((s) => s.id === current.id));
        await api().disableMySession({ id: others[0].id, xSessionToken: token });
        const left = await api().listMySessions({ xSessionToken: token });
        assert.equal(left.length, others.length - 1);
        assert.ok(!left.some((s) => s.id === others[0].id));
        // The own session can not be revoked this way.
        await expectStatus(() => api().disableMySession({ id: current.id, xSessionToken: token }), 400);
      });

      test('logout revokes the token', async () => {
        await api().performNativeLogout({ performNativeLogoutBody: { session_token: token } });
        await expectStatus(() => api().toSession({ xSessionToken: token }), 401);
      });
    });
  });
}
