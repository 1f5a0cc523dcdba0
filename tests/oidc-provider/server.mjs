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
// The process exits when its standard input closes (the test that started it is gone).

import { createServer } from 'node:http';
import { generateKeyPairSync, sign as rsaSign } from 'node:crypto';
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

const handle = provider.callback();
const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/test/sign') {
    testSign(req, res);
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
