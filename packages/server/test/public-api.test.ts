import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as server from "../src/index.js";
import * as internal from "../src/internal.js";

describe("the public API of @stan-ts/server", () => {
  it("does not export crashServer: the harness takes it from @stan-ts/server/internal", () => {
    expect(Object.keys(server)).not.toContain("crashServer");
    expect(typeof internal.crashServer).toBe("function");
  });

  it("the published package has no ./internal export (only the workspace resolves it)", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      exports: Record<string, unknown>;
      publishConfig: { exports: Record<string, unknown> };
    };
    expect(Object.keys(pkg.exports)).toContain("./internal");
    expect(Object.keys(pkg.publishConfig.exports)).toEqual(["."]);
  });
});
