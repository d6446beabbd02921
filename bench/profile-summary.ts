/**
 * Summarizes `.cpuprofile` files (from `pnpm bench --profile` or `node --cpu-prof`): self time
 * and total (inclusive) time per function, heaviest first.
 *
 *   pnpm exec tsx bench/profile-summary.ts <file.cpuprofile> [--top N] [--filter text]
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

/** Self and inclusive microseconds per function name. */
export function summarizeProfile(p: Profile): { entries: Map<string, Entry>; totalUs: number } {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
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

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: "string", default: "25" }, filter: { type: "string" } },
  });
  const top = Number(values.top);
  for (const file of positionals) {
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
