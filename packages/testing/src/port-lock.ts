/**
 * Locks shared by test files that vitest runs in parallel worker processes: tests that must
 * use a port as README writes it (4222) take turns instead of racing for it, and only one
 * worker rebuilds the workspace. A lock is a file in the system's temp folder created with
 * `wx`, holding the owner's PID; a lock whose owner died is taken over. Waiters wake on the
 * folder's change events.
 */

import { readFileSync, unlinkSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HarnessError, processAlive } from "./nats-server.js";

/** A held lock; `release()` (or `await using`) frees it for the next test. */
export interface HeldLock extends AsyncDisposable {
  release(): void;
}

/** A held port lock ({@link lockPort}). */
export interface PortLock extends HeldLock {
  readonly port: number;
}

function tryTake(path: string): boolean {
  try {
    writeFileSync(path, String(process.pid), { flag: "wx" });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  let owner = Number.NaN;
  try {
    owner = Number(readFileSync(path, "utf8"));
  } catch {
    return false; // released between our two calls: the next event retries
  }
  if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) return false;
  try {
    unlinkSync(path); // its owner died holding it
  } catch {}
  return false;
}

/**
 * Waits (at most `timeoutMs`) until this process holds the lock on `port`.
 * @throws HarnessError when another live process holds it for longer than `timeoutMs`.
 */
export async function lockPort(port: number, timeoutMs = 120_000): Promise<PortLock> {
  return { port, ...(await lockNamed(`port-${port}`, timeoutMs)) };
}

/**
 * Waits (at most `timeoutMs`) until this process holds the lock called `what` (a file name
 * part, such as `build`).
 * @throws HarnessError when another live process holds it for longer than `timeoutMs`.
 */
export async function lockNamed(what: string, timeoutMs = 120_000): Promise<HeldLock> {
  const dir = tmpdir();
  const name = `stan-ts-${what}.lock`;
  const path = join(dir, name);
  const lock: HeldLock = {
    release() {
      try {
        if (readFileSync(path, "utf8") === String(process.pid)) unlinkSync(path);
      } catch {}
    },
    async [Symbol.asyncDispose]() {
      lock.release();
    },
  };
  if (tryTake(path)) return lock;
  await new Promise<void>((resolve, reject) => {
    const watcher = watch(dir, (_event, file) => {
      if (file === name && tryTake(path)) done();
    });
    // a dead owner leaves no event behind: look again now and then for one
    const recheck = setInterval(() => tryTake(path) && done(), 1000);
    const timer = setTimeout(() => {
      cleanup();
      reject(new HarnessError(`${what} stayed locked by another test (${path})`));
    }, timeoutMs);
    function cleanup(): void {
      watcher.close();
      clearInterval(recheck);
      clearTimeout(timer);
    }
    function done(): void {
      cleanup();
      resolve();
    }
    if (tryTake(path)) done();
  });
  return lock;
}
