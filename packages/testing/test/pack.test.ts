// SLOW (about 20-40 s, most of it `npm install`): the published packages as a user gets them.
// Packs every public package with `pnpm pack` (needs `pnpm build`, which CI runs first),
// installs the tarballs with npm into a fresh project in the OS temp directory (outside the
// workspace; nats, p-queue and @bufbuild/protobuf come from the npm registry or npm's cache),
// then runs an ESM and a CJS consumer against a harness streaming server, the README's quick
// start compiled with tsc against the packed types, and the packed `stan` bin; alongside, it runs
// `pnpm check:packages` (attw and publint on the same tarballs), so that CI runs it too.
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ensureBuilt,
  npmEnv,
  npmInstall,
  type PackedPackage,
  packPublicPackages,
  type StreamingServerHandle,
  streamingServer,
} from "../src/index.js";

const exec = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const SLOW = 120_000;

/** The README's quick start code block and the example files it imports. */
function readmeQuickStart(): { code: string; imports: string[] } {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.split(/^## Quick start\s*$/m)[1]?.split(/^## /m)[0] ?? "";
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!code) throw new Error("README.md has no ```ts block under ## Quick start");
  const imports = [...code.matchAll(/from "(\.\/[^"]+)\.js"/g)].map((m) => m[1] ?? "");
  return { code, imports };
}

const ESM_CONSUMER = `import { connect } from "stan-ts";

const sc = await connect({
  clusterId: process.env.STAN_CLUSTER_ID,
  clientId: "esm-consumer-" + process.pid,
  servers: process.env.STAN_URL,
});
const subject = "packed.esm." + process.pid;
await sc.publish(subject, "hello from ESM");
const sub = await sc.subscribe(subject, { startAt: "first" });
for await (const msg of sub) {
  console.log("esm received " + msg.string());
  break;
}
await sc.close();
`;

// callback mode runs on p-queue, which the CJS build bundles (p-queue itself is ESM-only)
const CJS_CONSUMER = `const { connect, isStanError } = require("stan-ts");

(async () => {
  const sc = await connect({
    clusterId: process.env.STAN_CLUSTER_ID,
    clientId: "cjs-consumer-" + process.pid,
    servers: process.env.STAN_URL,
  });
  const subject = "packed.cjs." + process.pid;
  await sc.publish(subject, "hello from CJS");
  const got = new Promise((resolve) => {
    sc.subscribe(subject, { startAt: "first", callback: (msg) => resolve(msg.string()) });
  });
  console.log("cjs received " + (await got));
  console.log("isStanError is " + typeof isStanError);
  await sc.close();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
`;

const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    lib: ["ES2022", "ESNext.Disposable"],
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    // as `tsc --init` sets it; nats 2.x's own .d.ts needs the DOM lib otherwise
    skipLibCheck: true,
    types: ["node"],
    outDir: "out",
  },
  include: ["quickstart.ts", "lib"],
};

describe("packed packages (slow: pnpm pack + npm install into a fresh project)", () => {
  let work = "";
  let project = "";
  let packed: PackedPackage[] = [];
  let server: StreamingServerHandle | undefined;
  // `pnpm check:packages` (attw + publint on the tarballs) runs alongside the install
  let check: Promise<{ ok: boolean; out: string }> = Promise.resolve({ ok: false, out: "" });

  beforeAll(async () => {
    await ensureBuilt(root);
    check = exec("pnpm", ["run", "check:packages"], { cwd: root, env: npmEnv(), timeout: SLOW })
      .then(({ stdout }) => ({ ok: true, out: stdout }))
      .catch((err: { stdout?: string; stderr?: string }) => ({
        ok: false,
        out: `${err.stdout ?? ""}${err.stderr ?? String(err)}`,
      }));
    work = mkdtempSync(join(tmpdir(), "stan-ts-pack-"));
    project = join(work, "consumer");
    mkdirSync(project);
    const [pkgs, srv] = await Promise.all([packPublicPackages(root, work), streamingServer()]);
    packed = pkgs;
    server = srv;
    writeFileSync(
      join(project, "package.json"),
      `${JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2)}\n`,
    );
    await npmInstall(project, packed, ["@types/node@^20.19.0"], SLOW);
  }, SLOW);

  afterAll(async () => {
    await server?.[Symbol.asyncDispose]();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  function node(args: string[], env: Record<string, string | undefined> = {}) {
    const srv = server;
    if (!srv) throw new Error("no server");
    return exec(process.execPath, args, {
      cwd: project,
      env: npmEnv({ STAN_URL: srv.url, STAN_CLUSTER_ID: srv.clusterId, ...env }),
      timeout: 30_000,
    });
  }

  it("installed every public package from its tarball", () => {
    expect(packed.map((p) => p.name).sort()).toEqual([
      "@stan-ts/cli",
      "@stan-ts/core",
      "@stan-ts/jetstream",
      "@stan-ts/proto",
      "@stan-ts/server",
      "stan-ts",
    ]);
    for (const p of packed) {
      const dir = join(project, "node_modules", p.name);
      const text = readFileSync(join(dir, "package.json"), "utf8");
      const installed = JSON.parse(text) as { version: string; license: string; exports: unknown };
      expect(installed.version).toBe(p.version);
      expect(installed.license).toBe("Apache-2.0");
      expect(JSON.stringify(installed.exports)).not.toContain("@stan-ts/source");
      expect(text).not.toContain("workspace:");
      expect(readFileSync(join(dir, "LICENSE"), "utf8")).toContain("Apache License");
    }
  });

  it(
    "attw and publint report nothing (pnpm check:packages)",
    async () => {
      const { ok, out } = await check;
      expect(out).toContain("attw and publint: no problems");
      expect(ok, out).toBe(true);
    },
    SLOW,
  );

  it("ESM consumer: connect, publish, receive", async () => {
    writeFileSync(join(project, "esm.mjs"), ESM_CONSUMER);
    const { stdout } = await node(["esm.mjs"]);
    expect(stdout).toBe("esm received hello from ESM\n");
  });

  it("CJS consumer: connect, publish, receive in callback mode", async () => {
    writeFileSync(join(project, "cjs.cjs"), CJS_CONSUMER);
    const { stdout } = await node(["cjs.cjs"]);
    expect(stdout).toBe("cjs received hello from CJS\nisStanError is function\n");
  });

  it(
    "README quick start: type-checks against the packed types and runs",
    async () => {
      const { code, imports } = readmeQuickStart();
      writeFileSync(join(project, "quickstart.ts"), code);
      // the quick start's own helper (examples/lib/server.ts), copied as a user copies it
      for (const rel of imports) {
        mkdirSync(dirname(join(project, `${rel}.ts`)), { recursive: true });
        copyFileSync(join(root, "examples", `${rel}.ts`), join(project, `${rel}.ts`));
      }
      writeFileSync(join(project, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
      const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
      await exec(process.execPath, [tsc, "-p", "."], { cwd: project, timeout: 60_000 }).catch(
        (err: { stdout?: string }) => {
          throw new Error(`tsc failed:\n${err.stdout ?? String(err)}`);
        },
      );
      // with STAN_URL unset (a new user's shell) it starts the packed embedded server itself
      const external = server?.mode === "external";
      const { stdout } = await node(
        ["out/quickstart.js"],
        external ? {} : { STAN_URL: undefined, STAN_CLUSTER_ID: undefined },
      );
      expect(stdout).toMatch(/^connected as "quickstart"$/m);
      expect(stdout).toMatch(/^received #\d+ on "greetings": hello, NATS Streaming$/m);
      expect(stdout).toMatch(/^round trip complete$/m);
    },
    SLOW,
  );

  it("the packed bins answer --version and --help (stan, stan-server)", async () => {
    const bin = join(project, "node_modules", ".bin", "stan");
    const version = await exec(bin, ["--version"], { cwd: project, env: npmEnv() });
    expect(version.stdout).toContain("0.1.0");
    const help = await exec(bin, ["--help"], { cwd: project, env: npmEnv() });
    expect(help.stdout).toMatch(/pub/);
    expect(help.stdout).toMatch(/sub/);
    const server = join(project, "node_modules", ".bin", "stan-server");
    const serverVersion = await exec(server, ["--version"], { cwd: project, env: npmEnv() });
    expect(serverVersion.stdout).toMatch(/^stan-server version 0\.1\.0/);
  });
});
