import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { interopBin, interopTool } from "../src/index.js";

describe("interopTool", () => {
  let dir: string;
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.STAN_INTEROP_BIN;
    dir = mkdtempSync(join(tmpdir(), "stan-interop-"));
    process.env.STAN_INTEROP_BIN = dir;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.STAN_INTEROP_BIN;
    else process.env.STAN_INTEROP_BIN = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it("looks in STAN_INTEROP_BIN, else /opt/stan-tools/interop", () => {
    expect(interopBin()).toBe(dir);
    process.env.STAN_INTEROP_BIN = "";
    expect(interopBin()).toBe("/opt/stan-tools/interop");
  });

  it("says what is missing and how to build it, for each tool", () => {
    const go = interopTool("go");
    expect(go.missing).toBe(
      `${join(dir, "stan-interop")} is not built: run \`bash interop/build.sh\` (or set STAN_INTEROP_BIN to its output folder)`,
    );
    expect(interopTool("java").missing).toMatch(
      /stan-interop-java\.jar is not built: run `bash interop\/build\.sh`/,
    );
  });

  it("starts the Go tool directly and the Java one with java -jar", () => {
    const bin = join(dir, "stan-interop");
    writeFileSync(bin, "#!/bin/sh\n");
    chmodSync(bin, 0o755);
    writeFileSync(join(dir, "stan-interop-java.jar"), "");
    expect(interopTool("go")).toEqual({
      name: "go",
      label: "Go (stan.go v0.10.4)",
      command: bin,
      prefix: [],
    });
    const java = interopTool("java");
    expect(java.prefix).toEqual(["-jar", join(dir, "stan-interop-java.jar")]);
    expect(java.command).toBe("java");
    // java is installed on this project's machines; elsewhere the reason names it
    if (java.missing) expect(java.missing).toBe("no `java` on PATH to run the Java client tool");
  });
});
