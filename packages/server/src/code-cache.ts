/**
 * Loads a CommonJS bundle through V8's code cache, the way Node 22's
 * `module.enableCompileCache()` does for every module (Node 20 has no such switch): the bundle
 * is compiled with `vm.Script` and the cached data of an earlier run, and when there was none
 * (or V8 rejected it: another Node version or V8 flags) the caller writes it once start-up is
 * over ({@link Loaded.saveCache}), so that it covers the functions start-up compiled. The cache lives in a
 * directory of the current user under the OS temp directory (mode 0700, checked to be the
 * user's own and not a link); anything odd there and the bundle is simply compiled without it.
 *
 * @internal
 */

import {
  type BigIntStats,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

/** The cache directory, created if missing; undefined when it is not safely ours. */
function cacheDir(): string | undefined {
  const uid = process.getuid?.() ?? 0;
  const dir = process.env.STAN_SERVER_CACHE_DIR ?? join(tmpdir(), `stan-server-cache-${uid}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || (process.getuid && st.uid !== uid) || (st.mode & 0o022) !== 0) {
      return undefined;
    }
    return dir;
  } catch {
    return undefined;
  }
}

/** Caches not written for this long are removed when a new one is written (each build makes one). */
const MAX_AGE_MS = 30 * 24 * 3600 * 1000;

/** Removes the old caches of earlier builds and Node versions from `dir`, except `keep`. */
function prune(dir: string, keep: string): void {
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (file === keep || !name.endsWith(".v8")) continue;
    try {
      if (now - statSync(file).mtimeMs > MAX_AGE_MS) unlinkSync(file);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
}

/** A bundle run by {@link loadBundle}. */
export interface Loaded<T> {
  /** The bundle's exports. */
  exports: T;
  /** Whether V8 took the cached data (false: none, rejected, or the cache is off). */
  cacheUsed: boolean;
  /**
   * Writes the code cache if there was none or V8 rejected it (a no-op otherwise, and on any
   * error): call it once start-up is over. Idempotent.
   */
  saveCache(): void;
}

/**
 * Runs the CommonJS bundle at `url` with its code cache; undefined when the file does not
 * exist (running from sources).
 */
export function loadBundle<T>(url: URL): Loaded<T> | undefined {
  const file = fileURLToPath(url);
  let st: BigIntStats;
  try {
    st = statSync(file, { bigint: true });
  } catch {
    return undefined;
  }
  const source = readFileSync(file, "utf8");
  const dir = process.env.STAN_SERVER_CODE_CACHE === "0" ? undefined : cacheDir();
  const key = `${process.version}-${process.arch}-${st.size}-${st.mtimeNs}-${st.ino}.v8`;
  const cacheFile = dir ? join(dir, key) : undefined;
  let cached: Buffer | undefined;
  if (cacheFile) {
    try {
      cached = readFileSync(cacheFile);
    } catch {
      cached = undefined;
    }
  }
  // the CommonJS wrapper, on one line so that line numbers stay the bundle's own
  const wrapped = `(function (exports, require, module, __filename, __dirname) { ${source}\n});`;
  const script = new Script(wrapped, {
    filename: file,
    ...(cached ? { cachedData: cached } : {}),
  });
  const fn = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: { exports: unknown },
    filename: string,
    dirname: string,
  ) => void;
  const mod = { exports: {} as unknown };
  fn.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  let stale = cacheFile !== undefined && (!cached || script.cachedDataRejected === true);
  const saveCache = () => {
    if (!stale || !cacheFile) return;
    stale = false;
    try {
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
      renameSync(tmp, cacheFile);
      prune(dirname(cacheFile), cacheFile);
    } catch {
      // no cache this time; the next start compiles again
    }
  };
  const cacheUsed = cached !== undefined && script.cachedDataRejected !== true;
  return { exports: mod.exports as T, cacheUsed, saveCache };
}
