// better-auth peer for idflow's side-by-side benchmark (bench/run-peers.sh; not run in CI).
//
//   node server.mjs migrate --db FILE                 create the tables
//   node server.mjs seed    --db FILE --count N       insert N users (one scrypt hash, reused)
//   node server.mjs serve   --db FILE --port P [--workers W]
//
// `serve` runs better-auth's Node handler on node:http, bound to 127.0.0.1, with W worker
// processes (node:cluster; default: one per core) sharing the listening socket. SQLite through
// better-sqlite3 in WAL mode with synchronous=NORMAL and a 10 s busy timeout (the same journal
// settings idflow uses). Email + password, the twoFactor plugin, rate limiting off (the
// benchmark measures throughput, not the abuse protections), telemetry off.

import cluster from "node:cluster";
import http from "node:http";
import os from "node:os";
import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { twoFactor } from "better-auth/plugins";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";
import { hashPassword } from "better-auth/crypto";

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const cmd = process.argv[2];
const dbFile = arg("db", "better-auth.db");
const port = Number(arg("port", "3000"));
const baseURL = `http://127.0.0.1:${port}`;

function makeAuth() {
  const db = new Database(dbFile, { timeout: 10000 });
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  return betterAuth({
    appName: "bench",
    baseURL,
    basePath: "/api/auth",
    secret: "bench-only-secret-0123456789abcdef0123456789abcdef",
    trustedOrigins: [baseURL],
    database: db,
    emailAndPassword: { enabled: true },
    plugins: [twoFactor()],
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    logger: { level: "error" },
  });
}

async function migrate() {
  const auth = makeAuth();
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
}

async function seed() {
  const count = Number(arg("count", "1000"));
  const auth = makeAuth();
  const ctx = await auth.$context;
  const hash = await hashPassword("seed-Password-0");
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const user = await ctx.internalAdapter.createUser({
      email: `seed-${i}@example.com`,
      name: `Seed ${i}`,
      emailVerified: false,
    });
    await ctx.internalAdapter.linkAccount({
      userId: user.id,
      providerId: "credential",
      accountId: user.id,
      password: hash,
    });
  }
  console.log(`seeded ${count} users in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

function serve() {
  const workers = Number(arg("workers", String(os.availableParallelism())));
  if (cluster.isPrimary && workers > 1) {
    for (let i = 0; i < workers; i++) cluster.fork();
    cluster.on("exit", (w, code) => {
      console.error(`worker ${w.process.pid} exited (${code})`);
      process.exit(1);
    });
    const stop = () => {
      for (const w of Object.values(cluster.workers)) w?.kill();
      process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    return;
  }
  const handler = toNodeHandler(makeAuth());
  const server = http.createServer((req, res) => {
    if (req.url === "/health") {
      res.end("ok");
      return;
    }
    handler(req, res);
  });
  server.keepAliveTimeout = 65000;
  server.listen(port, "127.0.0.1");
}

switch (cmd) {
  case "migrate":
    await migrate();
    break;
  case "seed":
    await seed();
    break;
  case "serve":
    serve();
    break;
  default:
    console.error("usage: node server.mjs migrate|seed|serve --db FILE [--port P] [--count N] [--workers W]");
    process.exit(2);
}
