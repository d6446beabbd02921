// The documentation outside README stays true: docs/architecture.md names every source file of
// every package, and the API reference (typedoc.config.mjs) covers what users import, once.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import * as client from "../../packages/client/src/index.js";
import * as server from "../../packages/server/src/index.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "gen" ? [] : sourceFiles(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

describe("docs/architecture.md", () => {
  const text = readFileSync(join(root, "docs/architecture.md"), "utf8");

  it("names every package and every source file in it (a new or split file goes in its table)", () => {
    const packages = readdirSync(join(root, "packages"));
    for (const pkg of packages) {
      expect(text, `docs/architecture.md has no section for packages/${pkg}`).toContain(
        `## packages/${pkg} (`,
      );
      const section = text.split(`## packages/${pkg} (`)[1]?.split(/^## /m)[0] ?? "";
      for (const file of sourceFiles(join(root, "packages", pkg, "src"))) {
        const rel = relative(join(root, "packages", pkg), file);
        expect(
          section.includes(`\`${rel}\``),
          `docs/architecture.md's packages/${pkg} section does not name ${rel}`,
        ).toBe(true);
      }
    }
  });
});

describe("the API reference (pnpm run docs)", () => {
  it("documents stan-ts, @stan-ts/server and @stan-ts/jetstream, and the stan command by its usage", async () => {
    const config = (
      (await import(pathToFileURL(join(root, "typedoc.config.mjs")).href)) as {
        default: { entryPoints: string[]; projectDocuments: string[] };
      }
    ).default;
    expect(config.entryPoints).toEqual([
      "packages/client",
      "packages/server",
      "packages/jetstream",
    ]);
    expect(config.projectDocuments).toEqual(["docs/cli.md"]);
    expect(readFileSync(join(root, "docs/cli.md"), "utf8")).toContain(
      "{@include ../packages/cli/README.md}",
    );
    // the packages left out are still checked for TSDoc, by a second run that writes nothing
    const internal = (
      (await import(pathToFileURL(join(root, "typedoc.internal.mjs")).href)) as {
        default: { entryPoints: string[]; emit: string };
      }
    ).default;
    expect(internal.entryPoints).toEqual(["packages/core", "packages/proto", "packages/cli"]);
    expect(internal.emit).toBe("none");
  });

  it("has each error class once: stan-ts re-exports core's, the server adds only its own", () => {
    const errorNames = (m: Record<string, unknown>) =>
      Object.keys(m).filter((k) => /Error$/.test(k) && typeof m[k] === "function");
    const clientErrors = errorNames(client);
    expect(clientErrors).toContain("StanDecodeError");
    expect(errorNames(server).filter((n) => clientErrors.includes(n))).toEqual([]);
  });
});
