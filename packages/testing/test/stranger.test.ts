// SLOW (about 30-60 s, most of it `npm install`): a stranger's path, as README.md tells it.
// Packs the public packages (what `pnpm pack:all` does, after `pnpm build`), makes a new
// project with `npm init -y` in the OS temp directory (outside the workspace, so CommonJS by
// npm's default), installs the tarballs there with npm in one command, then runs, each taken
// from README.md as it is written today:
//   - the quick start (## Quick start) as ESM: a `.mts` file compiled by tsc with the options
//     README names (skipLibCheck), and its output checked against README's sample output;
//   - the CommonJS sample (## Install) with `require()`, in that CommonJS project;
//   - the CLI example (## The embedded server and the CLI) with the installed `stan` bin.
// Skipped, with the reason, when npm is not on PATH.
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ensureBuilt,
  lockPort,
  npmEnv,
  npmInstall,
  type PackedPackage,
  packPublicPackages,
} from "../src/index.js";

const exec = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const readme = readFileSync(join(root, "README.md"), "utf8");
const SLOW = 120_000;

function npmVersion(): string | undefined {
  try {
    return execFileSync("npm", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}
const npm = npmVersion();
const title = npm
  ? "a stranger's path: pack, npm install into a new project, README's code as written"
  : "a stranger's path (skipped: npm is not on PATH, and the path installs with npm)";

/** The environment of a new user's shell: no pnpm or npm settings, no harness server. */
const userEnv = () =>
  npmEnv({ STAN_URL: undefined, STAN_CLUSTER_ID: undefined, NATS_URL: undefined });

/** The body of the first ```lang block of README's section `heading`. */
function readmeBlock(heading: string, lang: string, containing = ""): string {
  const section = readme.split(new RegExp(`^## ${heading}\\s*$`, "m"))[1]?.split(/^## /m)[0];
  if (section === undefined) throw new Error(`README.md has no section "## ${heading}"`);
  for (const m of section.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, "g"))) {
    if (m[1]?.includes(containing)) return m[1];
  }
  throw new Error(`README.md's "## ${heading}" has no \`\`\`${lang} block with "${containing}"`);
}

/** A sample output line of README as a pattern: ports and guids vary from run to run. */
function sampleLine(line: string): RegExp {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(
    `^${escaped.replace(/127\\\.0\\\.0\\\.1:\d+/g, "127\\.0\\.0\\.1:\\d+").replace(/guid [A-Za-z0-9]{22}/g, "guid [A-Za-z0-9]{22}")}$`,
  );
}

/** Splits one shell command line of README (words, 'single quotes', a trailing & or # comment). */
function shellWords(line: string): { words: string[]; background: boolean } {
  const words: string[] = [];
  const re = /'([^']*)'|(#.*$)|(&)\s*|(\S+)/g;
  let background = false;
  for (const m of line.matchAll(re)) {
    if (m[2] !== undefined) break;
    if (m[3] !== undefined) background = true;
    else words.push(m[1] ?? m[4] ?? "");
  }
  return { words, background };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

describe.skipIf(!npm)(title, () => {
  let work = "";
  let project = "";
  let packed: PackedPackage[] = [];

  beforeAll(async () => {
    await ensureBuilt(root);
    work = mkdtempSync(join(tmpdir(), "stan-ts-stranger-"));
    project = join(work, "my-app");
    mkdirSync(project);
    packed = await packPublicPackages(root, join(work, "tarballs"));
    // npm init's defaults: "type" is "commonjs" (the README says what ESM needs)
    await exec("npm", ["init", "-y"], { cwd: project, env: userEnv() });
    await npmInstall(project, packed, ["@types/node@^20.19.0"], SLOW);
  }, SLOW);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const node = (args: string[]) =>
    exec(process.execPath, args, { cwd: project, env: userEnv(), timeout: 30_000 });

  it(
    "the quick start as ESM (.mts, skipLibCheck) prints what README shows",
    async () => {
      const pkg = JSON.parse(readFileSync(join(project, "package.json"), "utf8")) as {
        type?: string;
      };
      expect(pkg.type ?? "commonjs").toBe("commonjs");
      writeFileSync(join(project, "quickstart.mts"), readmeBlock("Quick start", "ts"));
      writeFileSync(
        join(project, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            lib: ["ES2022", "ESNext.Disposable"],
            module: "NodeNext",
            strict: true,
            skipLibCheck: true,
            types: ["node"],
            outDir: "out",
          },
          files: ["quickstart.mts"],
        }),
      );
      const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
      await exec(process.execPath, [tsc, "-p", "."], { cwd: project, timeout: 60_000 }).catch(
        (err: { stdout?: string }) => {
          throw new Error(`tsc failed:\n${err.stdout ?? String(err)}`);
        },
      );
      const { stdout } = await node(["out/quickstart.mjs"]);
      // README's sample output of the same code (`pnpm demo prints:`), line by line
      const sample = /`pnpm demo` prints:\s*```text\n([\s\S]*?)```/.exec(readme)?.[1];
      expect(sample, "README shows what pnpm demo prints").toBeDefined();
      const expected = (sample ?? "").trimEnd().split("\n");
      const got = stdout.trimEnd().split("\n");
      expect(got).toHaveLength(expected.length);
      for (const [i, line] of expected.entries()) expect(got[i]).toMatch(sampleLine(line));
    },
    SLOW,
  );

  it("the CommonJS sample runs with require() in the CommonJS project", async () => {
    writeFileSync(join(project, "main.js"), readmeBlock("Install", "js", "require("));
    const { stdout } = await node(["main.js"]);
    expect(stdout).toMatch(/^published; the server acknowledged guid [A-Za-z0-9]{22}\n$/);
  });

  it("the CLI example, as written, with the installed stan", async (ctx) => {
    // the CLI's own test runs the same example on the same port: take turns
    await using _port = await lockPort(4222);
    if (!(await portFree(4222))) {
      ctx.skip("port 4222 is in use on this machine: README's CLI example needs it");
    }
    const bin = join(project, "node_modules", ".bin");
    const lines = readmeBlock("The embedded server and the CLI", "sh", "stan server &")
      .split("\n")
      .filter((l) => l.startsWith("stan "));
    expect(lines.map((l) => shellWords(l).words.slice(0, 2).join(" "))).toEqual([
      "stan server",
      "stan sub",
      "stan pub",
    ]);
    const background: Array<{
      child: ChildProcess;
      out: () => string;
      exited: Promise<number>;
      ready: boolean;
    }> = [];
    try {
      for (const line of lines) {
        const { words, background: bg } = shellWords(line);
        const child = spawn(join(bin, "stan"), words.slice(1), {
          cwd: project,
          env: userEnv(),
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout?.setEncoding("utf8").on("data", (c: string) => (out += c));
        const exited = new Promise<number>((resolve) =>
          child.once("close", (code) => resolve(code ?? 128)),
        );
        if (!bg) {
          const code = await exited;
          expect(code, `${line}\n${err}`).toBe(0);
          expect(out).toMatch(/^[A-Za-z0-9]{22}\n$/); // stan pub prints the guid
          continue;
        }
        const entry = { child, out: () => out, exited, ready: false };
        background.push(entry);
        // a background command is ready once it says so on stderr
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${line}: not ready:\n${err}`)), 20_000);
          child.stderr?.setEncoding("utf8").on("data", (c: string) => {
            err += c;
            if (/streaming server ready on nats:\/\/127\.0\.0\.1:4222|listening on/.test(err)) {
              clearTimeout(timer);
              entry.ready = true;
              resolve();
            }
          });
          void exited.then(() => reject(new Error(`${line}: exited:\n${err}`)));
        }).catch((e: unknown) => {
          // Something outside the suite took 4222 after the probe.
          if (/127\.0\.0\.1:4222 is already in use/.test(err)) {
            ctx.skip("port 4222 was taken by another process while this test started its server");
          }
          throw e;
        });
      }
      const sub = background[1];
      await expect
        .poll(() => sub?.out() ?? "", { timeout: 10_000 })
        .toMatch(/orders: hello world\n/);
    } finally {
      // `kill %2 %1`
      for (const b of background.reverse()) {
        b.child.kill("SIGTERM");
        const code = await b.exited;
        if (b.ready) expect(code).toBe(0);
      }
    }
  }, 120_000); // it may wait for the CLI test to free 4222
});
