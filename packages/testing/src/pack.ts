import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { HarnessError } from "./nats-server.js";
import { lockNamed } from "./port-lock.js";

const run = promisify(execFile);

/** A workspace package that is published (its package.json is not `private`). */
export interface PublicPackage {
  /** The package name, such as `stan-ts` or `@stan-ts/core`. */
  readonly name: string;
  readonly version: string;
  /** Absolute path of the package directory. */
  readonly dir: string;
}

/** A public package packed by {@link packPublicPackages}. */
export interface PackedPackage extends PublicPackage {
  /** Absolute path of the `.tgz` that `pnpm pack` wrote. */
  readonly tarball: string;
  /** Paths of the files in the tarball, relative to the package root. */
  readonly files: readonly string[];
}

/** The public packages under `<root>/packages`, in directory order. */
export function publicPackages(root: string): PublicPackage[] {
  const base = join(root, "packages");
  const out: PublicPackage[] = [];
  for (const entry of readdirSync(base, { withFileTypes: true })) {
    const file = join(base, entry.name, "package.json");
    if (!entry.isDirectory() || !existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, "utf8")) as {
      name: string;
      version: string;
      private?: boolean;
    };
    if (!pkg.private)
      out.push({ name: pkg.name, version: pkg.version, dir: join(base, entry.name) });
  }
  return out;
}

/** The newest modification time (ms) of the files below `dir`, or 0 when there are none. */
function newestMtime(dir: string): number {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

/** True when `pkg` has no `dist`, or a source file (or package.json) changed after it was built. */
function needsBuild(pkg: PublicPackage): boolean {
  const built = newestMtime(join(pkg.dir, "dist"));
  if (built === 0) return true;
  const source = Math.max(
    newestMtime(join(pkg.dir, "src")),
    statSync(join(pkg.dir, "package.json")).mtimeMs,
  );
  return source > built;
}

/**
 * Builds the workspace (`pnpm build`) when a public package has no `dist` yet or its sources
 * changed since it was built, so that README's `pnpm test` works on a fresh clone and packs
 * what the sources say; CI builds before testing, so there it does nothing.
 */
export async function ensureBuilt(root: string): Promise<void> {
  if (!publicPackages(root).some(needsBuild)) return;
  // test files call this in parallel: one builds, the others wait and find it built
  await using _build = await lockNamed("build", 300_000);
  if (!publicPackages(root).some(needsBuild)) return;
  await run("pnpm", ["build"], { cwd: root });
}

/**
 * Packs every public package of the workspace at `root` into `dest` with `pnpm pack`, as it would
 * be published: `workspace:*` ranges become versions and `publishConfig` overrides apply. The
 * packages must be built (`pnpm build`); a missing `dist` is a {@link HarnessError}.
 */
export async function packPublicPackages(root: string, dest: string): Promise<PackedPackage[]> {
  const pkgs = publicPackages(root);
  const unbuilt = pkgs.filter((p) => !existsSync(join(p.dir, "dist")));
  if (unbuilt.length > 0) {
    throw new HarnessError(
      `not built: ${unbuilt.map((p) => p.name).join(", ")} (run \`pnpm build\` first)`,
    );
  }
  return Promise.all(
    pkgs.map(async (p) => {
      // built above: --ignore-scripts skips each package's prepack build, whose output
      // would otherwise precede the JSON on stdout
      const { stdout } = await run(
        "pnpm",
        ["pack", "--pack-destination", dest, "--json", "--ignore-scripts"],
        { cwd: p.dir },
      );
      const out = JSON.parse(stdout) as { filename: string; files: { path: string }[] };
      return { ...p, tarball: out.filename, files: out.files.map((f) => f.path) };
    }),
  );
}

/**
 * The environment for npm in a project outside the workspace: this process's, without the
 * `npm_*` and `pnpm_*` settings pnpm sets for scripts (they would leak into npm), plus `extra`
 * (an `undefined` value removes a variable).
 */
export function npmEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries({ ...process.env, ...extra })) {
    if (v !== undefined && !/^(npm_|pnpm_)/i.test(k)) env[k] = v;
  }
  return env;
}

/**
 * Installs the tarballs of `packed`, and `more` package specs, into the npm project at
 * `project` in one `npm install` (they depend on each other), as README's Install section
 * tells a user to; what is not among them comes from the npm registry or npm's cache.
 */
export async function npmInstall(
  project: string,
  packed: readonly PackedPackage[],
  more: readonly string[] = [],
  timeoutMs = 120_000,
): Promise<void> {
  await run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      "--loglevel=error",
      ...packed.map((p) => p.tarball),
      ...more,
    ],
    { cwd: project, env: npmEnv(), timeout: timeoutMs },
  );
}
