import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { stanDone } from "./helpers.js";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

describe("help and version", () => {
  test("stan --help lists the commands and global flags on stdout, exit 0", async () => {
    for (const flag of ["--help", "-h"]) {
      const r = await stanDone([flag]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      for (const word of [
        "pub <subject>",
        "sub <subject>",
        "bench",
        "server",
        "--server",
        "--cluster",
        "--id",
        "--version",
        "Exit codes",
      ]) {
        expect(r.stdout).toContain(word);
      }
    }
  });

  test("stan without arguments prints the help on stderr and exits 2", async () => {
    const r = await stanDone([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("Usage: stan <command>");
  });

  test("stan --version prints the package version", async () => {
    for (const flag of ["--version", "-v"]) {
      const r = await stanDone([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`stan ${pkg.version}\n`);
    }
  });

  test.each([
    ["pub", ["Usage: stan pub", "--quiet", "--json", "stdin", "--server"]],
    [
      "sub",
      [
        "Usage: stan sub",
        "--new-only",
        "--last",
        "--all",
        "--first",
        "--seq",
        "--since",
        "--time",
        "--durable",
        "--queue",
        "--manual-ack",
        "--max-inflight",
        "--ack-wait",
        "--count",
        "--format",
      ],
    ],
    ["bench", ["Usage: stan bench", "--pub", "--sub", "--msgs", "--size", "--async", "--progress"]],
    ["server", ["Usage: stan server", "--cluster_id", "-c/--cluster", "--store", "--port"]],
  ])("stan %s --help", async (command, words) => {
    for (const flag of ["--help", "-h"]) {
      const r = await stanDone([command, flag]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      for (const word of words) expect(r.stdout).toContain(word);
    }
  });
});

describe("usage errors exit 2 with a pointer to the help", () => {
  test.each([
    [["bogus"], 'unknown command "bogus"', "stan --help"],
    [["--bogus"], "missing command", "stan --help"],
    [["pub"], "missing <subject>", "stan pub --help"],
    [["pub", "orders"], "missing <data>", "stan pub --help"],
    [["pub", "orders", "a", "b"], 'unexpected argument "b"', "stan pub --help"],
    [["pub", "orders", "--json", "{nope"], "not valid JSON", "stan pub --help"],
    [["pub", "--nope", "orders", "x"], "--nope", "stan pub --help"],
    [["sub"], "missing <subject>", "stan sub --help"],
    [["sub", "orders", "--all", "--last"], "choose one start position", "stan sub --help"],
    [["sub", "orders", "--seq", "0"], 'invalid --seq "0"', "stan sub --help"],
    [["sub", "orders", "--seq", "x"], 'invalid --seq "x"', "stan sub --help"],
    [["sub", "orders", "--since", "soon"], 'invalid --since "soon"', "stan sub --help"],
    [
      ["sub", "orders", "--time", "yesterday-ish"],
      'invalid --time "yesterday-ish"',
      "stan sub --help",
    ],
    [["sub", "orders", "--time", "2999-01-01T00:00:00Z"], "in the future", "stan sub --help"],
    [["sub", "orders", "--format", "xml"], 'invalid --format "xml"', "stan sub --help"],
    [["sub", "orders", "--count", "-1"], "--count", "stan sub --help"],
    [["sub", "orders", "--count", "0"], 'invalid --count "0"', "stan sub --help"],
    [["sub", "orders", "--ack-wait", "500ms"], "at least 1s", "stan sub --help"],
    [
      ["sub", "orders", "--max-inflight", "many"],
      'invalid --max-inflight "many"',
      "stan sub --help",
    ],
    [["sub", "orders", "--id", "bad id"], 'invalid --id "bad id"', "stan sub --help"],
    [["sub", "orders", "--server"], "--server", "stan sub --help"],
    [["bench", "--msgs", "0"], 'invalid --msgs "0"', "stan bench --help"],
    [["bench", "--pub", "0"], "--pub must be at least 1", "stan bench --help"],
    [["server", "--bogus"], 'unknown flag "--bogus"', "stan server --help"],
    [["server", "-store", "tape"], 'unsupported store type "tape"', "stan server --help"],
  ])("stan %j", async (argv, message, help) => {
    const r = await stanDone(argv, { env: { NATS_URL: "nats://127.0.0.1:1" } });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain(`Run "${help}" for usage.`);
  });
});
