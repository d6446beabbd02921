/**
 * Summarizes `.cpuprofile` files (from `pnpm bench --profile` or `node --cpu-prof`): self time
 * and total (inclusive) time per function, heaviest first.
 *
 *   pnpm exec tsx bench/profile-summary.ts <file.cpuprofile> [--top N] [--filter text] [--group]
 *
 * `--group` sums self time by where the code comes from (nats.js, stan-ts, the Node.js
 * runtime, socket writes, GC, idle): the "what limits it" view of a profile.
 */
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

interface Entry {
  self: number;
  total: number;
}

function frameName(f: CallFrame): string {
  const file = f.url ? relative(process.cwd(), f.url.replace(/^file:\/\//, "")) : "";
  const name = f.functionName || "(anonymous)";
  return file ? `${name} ${file}:${f.lineNumber + 1}` : name;
}

/** A profile's nodes by id, and each node's parent id. */
function indexNodes(p: Profile): { byId: Map<number, ProfileNode>; parent: Map<number, number> } {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  return { byId, parent };
}

/** Self and inclusive microseconds per function name. */
export function summarizeProfile(p: Profile): { entries: Map<string, Entry>; totalUs: number } {
  const { byId, parent } = indexNodes(p);
  const selfUs = new Map<number, number>();
  let totalUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    const dt = p.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    totalUs += dt;
  }
  const entries = new Map<string, Entry>();
  const get = (name: string): Entry => {
    let e = entries.get(name);
    if (!e) {
      e = { self: 0, total: 0 };
      entries.set(name, e);
    }
    return e;
  };
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    get(frameName(node.callFrame)).self += us;
    // Inclusive time: once per distinct function on the stack (recursion counted once).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const name = frameName(n.callFrame);
      if (seen.has(name)) continue;
      seen.add(name);
      get(name).total += us;
    }
  }
  return { entries, totalUs };
}

/** Where a sampled frame's code comes from, for `--group`. */
export function category(f: CallFrame): string {
  const url = f.url;
  const name = f.functionName;
  if (!url) {
    if (name === "(garbage collector)") return "garbage collection";
    if (name === "(idle)") return "idle (waiting for the network)";
    if (name === "(program)") return "V8 (compiler, runtime)";
    if (/^(writeBuffer|writev|writeUtf8String|writeLatin1String)$/.test(name))
      return "socket writes (syscalls)";
    return "native (other)";
  }
  if (/node-nats-streaming|google-protobuf/.test(url)) return "node-nats-streaming";
  if (/\/nats@1\./.test(url)) return "nats 1.x (node-nats-streaming's NATS client)";
  if (/\/nats\/lib\/|\/nats\/index/.test(url)) return "nats.js (parser, protocol, writes)";
  if (url.startsWith("node:")) return "Node.js runtime (buffers, streams, timers)";
  if (/packages\/server\//.test(url)) return "@stan-ts/server";
  if (/packages\/core\//.test(url)) return "@stan-ts/core (engine, codecs, frames)";
  if (/packages\/(client|proto)\//.test(url)) return "stan-ts (client)";
  if (/bench\/results\/\.(build|cc)\//.test(url))
    return "stan-ts (bundled: client, core, bench loop)";
  if (/node_modules/.test(url)) return "other packages";
  return "other";
}

const HELPERS = new Set(["Node.js runtime (buffers, streams, timers)", "native (other)"]);

/** Self time per {@link category}; runtime helpers are charged to their nearest library caller. */
export function groupProfile(p: Profile): { groups: Map<string, number>; totalUs: number } {
  const { byId, parent } = indexNodes(p);
  const groups = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    const dt = p.timeDeltas[i] ?? 0;
    totalUs += dt;
    const node = byId.get(id);
    if (!node) continue;
    // Runtime helpers (Buffer.subarray, stream plumbing) count for the library that called them.
    let c = category(node.callFrame);
    for (let up = parent.get(id); up !== undefined && HELPERS.has(c); up = parent.get(up)) {
      const caller = byId.get(up);
      if (!caller) break;
      const cc = category(caller.callFrame);
      if (!HELPERS.has(cc)) c = cc;
    }
    groups.set(c, (groups.get(c) ?? 0) + dt);
  }
  return { groups, totalUs };
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: "string", default: "25" },
      filter: { type: "string" },
      group: { type: "boolean", default: false },
    },
  });
  const top = Number(values.top);
  for (const file of positionals) {
    if (values.group) {
      const { groups, totalUs } = groupProfile(JSON.parse(readFileSync(file, "utf8")) as Profile);
      const busy = totalUs - (groups.get("idle (waiting for the network)") ?? 0);
      process.stdout.write(
        `\n${file}: ${(totalUs / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms busy\n  share of busy time  where\n`,
      );
      for (const [name, us] of [...groups].sort((a, b) => b[1] - a[1])) {
        if (name.startsWith("idle")) continue;
        process.stdout.write(`${((us / busy) * 100).toFixed(1).padStart(8)}%  ${name}\n`);
      }
      continue;
    }
    const { entries, totalUs } = summarizeProfile(
      JSON.parse(readFileSync(file, "utf8")) as Profile,
    );
    const pct = (us: number): string => `${((us / totalUs) * 100).toFixed(1).padStart(5)}%`;
    const rows = [...entries].filter(([n]) => !values.filter || n.includes(values.filter));
    process.stdout.write(
      `\n${file}: ${(totalUs / 1000).toFixed(0)} ms sampled\n  self   total  function\n`,
    );
    for (const [name, e] of rows.sort((a, b) => b[1].self - a[1].self).slice(0, top)) {
      process.stdout.write(`${pct(e.self)} ${pct(e.total)}  ${name}\n`);
    }
  }
}

main();
