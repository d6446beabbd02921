// README.md stays true: every TypeScript block in it is an example file (type-checked with
// the project and run by examples.test.ts), and every command it names exists.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const readme = readFileSync(`${root}README.md`, "utf8");
const scripts = Object.keys(
  (JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { scripts: Record<string, string> })
    .scripts,
);

const blocks = [...readme.matchAll(/(?:<!-- include: (\S+) -->\n)?```(\w+)\n([\s\S]*?)```/g)].map(
  (m) => ({ include: m[1], lang: m[2], body: m[3] ?? "" }),
);

describe("README.md", () => {
  it("has TypeScript blocks, each one an example file included verbatim", () => {
    const ts = blocks.filter((b) => b.lang === "ts");
    expect(ts.length).toBeGreaterThanOrEqual(10);
    for (const b of ts) {
      expect(
        b.include,
        `a ts block without an include marker:\n${b.body.slice(0, 200)}`,
      ).toBeDefined();
      const file = readFileSync(`${root}${b.include}`, "utf8");
      expect(b.body, `README copy of ${b.include} is stale`).toBe(
        file.endsWith("\n") ? file : `${file}\n`,
      );
    }
  });

  it("opens with a table of contents that lists every section, in order, with working anchors", () => {
    const sections = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1] ?? "");
    expect(sections[0]).toBe("Contents");
    const contents = readme.split(/^## Contents$/m)[1]?.split(/^## /m)[0] ?? "";
    const entries = [...contents.matchAll(/^- \[(.+)\]\(#([^)]+)\)$/gm)];
    expect(entries.map((e) => e[1])).toEqual(sections.slice(1));
    const anchor = (h: string) =>
      h
        .toLowerCase()
        .replace(/[^\w\- ]/g, "")
        .replace(/ /g, "-");
    expect(entries.map((e) => e[2])).toEqual(sections.slice(1).map(anchor));
  });

  it("speaks to its readers: no project-internal words or paths outside the repository", () => {
    for (const [pattern, what] of [
      [/\bissue \d+/i, "an issue number"],
      [/\bpoint \d+\b/i, "a point of an issue"],
      [/\bseed (client|API)\b/i, "the seed client"],
      [/\.\.\/shared|shared\/docs/, "a path outside the repository"],
    ] as const) {
      expect(readme, `README names ${what}`).not.toMatch(pattern);
    }
  });

  it("names only pnpm scripts that exist, and files that exist", () => {
    const builtins = new Set(["install", "add", "exec", "pack"]);
    // `pnpm run x` and `pnpm x` both name the script x (some names, like docs, need `run`)
    const command = /pnpm (?:run )?([a-z:]+)/g;
    const named = [...readme.matchAll(/`(pnpm [^`]*)`/g)].flatMap((m) =>
      [...(m[1] ?? "").matchAll(command)].map((c) => c[1]),
    );
    const shell = blocks
      .filter((b) => b.lang === "sh")
      .flatMap((b) => [...b.body.matchAll(command)].map((m) => m[1]));
    // pnpm's own commands shadow scripts of the same name: those must be run with `pnpm run`
    expect(readme).not.toMatch(/`pnpm docs`/);
    for (const cmd of [...named, ...shell]) {
      if (!cmd) continue;
      expect(builtins.has(cmd) || scripts.includes(cmd), `README runs "pnpm ${cmd}"`).toBe(true);
    }
    for (const [, path] of readme.matchAll(
      /\]\(((?:examples|docs|packages|\.ci)[^)#]*|docker-compose\.yml)\)/g,
    )) {
      expect(existsSync(`${root}${path}`), `README links to ${path}`).toBe(true);
    }
  });
});
