// A real OpenID Connect provider (the `oidc-provider` package) for idflow's integration tests.
//
//   node server.mjs --port 4455 --client-id idflow --client-secret s3cret \
//        --redirect-uri http://127.0.0.1:4433/self-service/methods/oidc/callback/test
//
// Issuer: http://127.0.0.1:<port>. One confidential client (client_secret_basic, PKCE required).
// Login and consent use oidc-provider's built-in development pages (/interaction/<uid>): any
// login name is accepted and becomes the subject. Claims of account "<name>":
//   sub = <name>; email = <name> if it contains "@", else <name>@example.org;
//   email_verified = false when <name> starts with "unverified", else true;
//   no email at all when <name> starts with "noemail"; given_name "Test", family_name <name>.
// Email and profile claims are released at the userinfo endpoint (not in the ID token), as
// oidc-provider does by default.
//
// Test helper (not part of OpenID Connect): POST /test/sign with {"claims": {...}, "key":
// "provider" | "other"} returns {"token": "<RS256 JWT>"} signed with the provider's signing key
// or with an unrelated key that claims the same key id (a forgery).
//
// A fake GitHub (OAuth2 + user API, as GitHub Enterprise lays it out) under /github, for the
// `github` preset with issuer_url http://127.0.0.1:<port>/github: /github/login/oauth/authorize
// signs in at once as `login_hint` (default "octocat") and sends the browser back with a code;
// /github/login/oauth/access_token checks client, redirect URI and the PKCE verifier (S256);
// /github/api/v3/user and /github/api/v3/user/emails describe the user (id = a number derived
// from the login; primary verified email <login>@users.example).
//
// The process exits when its standard input closes (the test that started it is gone).

import { createServer } from 'node:http';
import { createHash, generateKeyPairSync, randomBytes, sign as rsaSign } from 'node:crypto';
import Provider from 'oidc-provider';

function args() {
  const out = { port: 0, clientId: 'idflow', clientSecret: 'idflow-secret', redirectUris: [] };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 1) {
    const next = () => {
      i += 1;
      if (i >= argv.length) throw new Error(`missing value for ${argv[i - 1]}`);
      return argv[i];
    };
    switch (argv[i]) {
      case '--port': out.port = Number(next()); break;
      case '--client-id': out.clientId = next(); break;
      case '--client-secret': out.clientSecret = next(); break;
      case '--redirect-uri': out.redirectUris.push(next()); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!out.port) throw new Error('--port is required');
  if (out.redirectUris.length === 0) throw new Error('at least one --redirect-uri is required');
  return out;
}

const opts = args();
const issuer = `http://127.0.0.1:${opts.port}`;
const KID = 'test-signing-key';

function rsaKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey;
}
const signingKey = rsaKey();
const otherKey = rsaKey();
const signingJwk = { ...signingKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };

function accountClaims(id) {
  const claims = { sub: id, given_name: 'Test', family_name: id, name: `Test ${id}` };
  if (!id.startsWith('noemail')) {
    claims.email = id.includes('@') ? id : `${id}@example.org`;
    claims.email_verified = !id.startsWith('unverified');
  }
  return claims;
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: opts.clientId,
    client_secret: opts.clientSecret,
    redirect_uris: opts.redirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingJwk] },
  cookies: { keys: ['idflow-test-cookie-key-0123456789'] },
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['given_name', 'family_name', 'name'],
  },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return accountClaims(id); } };
  },
});

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function signJwt(claims, key) {
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: KID }));
  const payload = b64url(JSON.stringify(claims));
  const sig = rsaSign('sha256', Buffer.from(`${header}.${payload}`), key);
  return `${header}.${payload}.${b64url(sig)}`;
}

async function testSign(req, res) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  try {
    const body = JSON.parse(raw || '{}');
    const key = body.key === 'other' ? otherKey : signingKey;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: signJwt(body.claims || {}, key) }));
  } catch (e) {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: String(e) }));
  }
}

const ghCodes = new Map();
const ghId = (login) => parseInt(createHash('sha256').update(login).digest('hex').slice(0, 8), 16);

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function github(req, res, url) {
  if (req.method === 'GET' && url.pathname === '/github/login/oauth/authorize') {
    const q = url.searchParams;
    const redirect = q.get('redirect_uri');
    if (q.get('client_id') !== opts.clientId || !opts.redirectUris.includes(redirect)
      || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) {
      json(res, 400, { error: 'bad authorization request' });
      return;
    }
    const code = randomBytes(16).toString('hex');
    ghCodes.set(code, { login: q.get('login_hint') || 'octocat', challenge: q.get('code_challenge'), redirect });
    const back = new URL(redirect);
    back.searchParams.set('code', code);
    back.searchParams.set('state', q.get('state') || '');
    res.writeHead(302, { location: back.toString() });
    res.end();
    return;
  }
  if (req.method === 'POST' && url.pathname === '/github/login/oauth/access_token') {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const f = new URLSearchParams(raw);
    const grant = ghCodes.get(f.get('code'));
    ghCodes.delete(f.get('code'));
    const verifier = f.get('code_verifier') || '';
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    if (!grant || f.get('client_id') !== opts.clientId || f.get('client_secret') !== opts.clientSecret
      || f.get('redirect_uri') !== grant.redirect || challenge !== grant.challenge) {
      json(res, 200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      return;
    }
    json(res, 200, { access_token: `gho_${grant.login}`, token_type: 'bearer', scope: 'user:email' });
    return;
  }
  const auth = req.headers.authorization || '';
  const login = auth.startsWith('Bearer gho_') ? auth.slice('Bearer gho_'.length) : '';
  if (req.method === 'GET' && login && url.pathname === '/github/api/v3/user') {
    json(res, 200, {
      id: ghId(login), login, name: `The ${login}`, email: null,
      avatar_url: `https://avatars.example/${login}`, html_url: `https://github.example/${login}`,
    });
    return;
  }
  if (req.method === 'GET' && login && url.pathname === '/github/api/v3/user/emails') {
    json(res, 200, [
      { email: `${login}-old@users.example`, primary: false, verified: false },
      { email: `${login}@users.example`, primary: true, verified: true },
    ]);
    return;
  }
  json(res, 401, { message: 'Requires authentication' });
}

const handle = provider.callback();
const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/test/sign') {
    testSign(req, res);
    return;
  }
  const url = new URL(req.url, issuer);
  if (url.pathname.startsWith('/github/')) {
    github(req, res, url).catch((e) => json(res, 500, { error: String(e) }));
    return;
  }
  handle(req, res);
});

server.listen(opts.port, '127.0.0.1', () => {
  process.stdout.write(`oidc-provider listening on ${issuer}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
