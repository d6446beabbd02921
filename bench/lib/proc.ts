/** CPU time of other processes, from Linux's /proc (the bench's view of a server it did not start in-process). */
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** The fields of /proc/<pid>/stat after the command name (which may contain spaces). */
function statFields(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** User + system CPU time of `pid` in microseconds (10 ms resolution), undefined when unreadable. */
export function processCpuUs(pid: number): number | undefined {
  const f = statFields(pid);
  if (!f) return undefined;
  // after the name: state(0) ppid(1) ... utime(11) stime(12)
  return ((Number(f[11]) + Number(f[12])) * 1e6) / USER_HZ;
}

/** The pid of a child of this process whose command name starts with `name`, if there is one. */
export function findChild(name: string): number | undefined {
  let dirs: string[];
  try {
    dirs = readdirSync("/proc");
  } catch {
    return undefined;
  }
  for (const d of dirs) {
    const pid = Number(d);
    if (!Number.isInteger(pid)) continue;
    try {
      const s = readFileSync(`/proc/${pid}/stat`, "utf8");
      const comm = s.slice(s.indexOf("(") + 1, s.lastIndexOf(")"));
      const ppid = Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid && name.startsWith(comm.slice(0, 15))) return pid;
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}
