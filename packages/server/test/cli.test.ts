import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseArgs, parseDuration, parseSize } from "../src/cli.js";

describe("stan-server flags", () => {
  it("parses durations and sizes like the official server", () => {
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("100ms")).toBe(100);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("5")).toBe(5000);
    expect(() => parseDuration("soon")).toThrow('invalid duration "soon"');
    expect(parseSize("1KB")).toBe(1024);
    expect(parseSize("10MB")).toBe(10 * 1024 * 1024);
    expect(parseSize("123")).toBe(123);
  });

  it("maps every documented flag to an option", () => {
    const o = parseArgs([
      "-cid",
      "c1",
      "-store",
      "file",
      "-dir",
      "/tmp/x",
      "-hbi",
      "1s",
      "-hbt",
      "500ms",
      "-hbf",
      "3",
      "-mc",
      "5",
      "-msu",
      "6",
      "-mm",
      "7",
      "-mb",
      "1KB",
      "-ma",
      "1m",
      "-a",
      "127.0.0.1",
      "-p",
      "4333",
      "--discover_prefix=_D",
      "-D",
    ]);
    expect(o).toEqual({
      logLevel: "debug",
      clusterId: "c1",
      store: "FILE",
      dir: "/tmp/x",
      hbInterval: 1000,
      hbTimeout: 500,
      hbFailCount: 3,
      maxChannels: 5,
      maxSubsPerChannel: 6,
      maxMsgs: 7,
      maxBytes: 1024,
      maxAge: 60_000,
      natsPort: 4333,
      natsArgs: ["-a", "127.0.0.1"],
      discoverPrefix: "_D",
    });
    expect(parseArgs(["-ns", "nats://127.0.0.1:4222"])).toMatchObject({
      natsUrl: "nats://127.0.0.1:4222",
    });
    expect(parseArgs(["--help"])).toBe("help");
    expect(parseArgs(["-v"])).toBe("version");
    expect(() => parseArgs(["-bogus", "1"])).toThrow('unknown flag "-bogus"');
    expect(() => parseArgs(["-store", "sql"])).toThrow('unsupported store type "sql"');
  });

  it("the bin prints help and version", () => {
    const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url));
    const run = (arg: string) =>
      spawnSync(process.execPath, ["--import", "tsx", "--conditions=@stan-ts/source", bin, arg], {
        encoding: "utf8",
      });
    const help = run("--help");
    expect(help.status).toBe(0);
    for (const f of [
      "-cid",
      "-store",
      "-dir",
      "-hbi",
      "-hbt",
      "-hbf",
      "-mc",
      "-msu",
      "-mm",
      "-mb",
      "-ma",
      "-ns",
    ]) {
      expect(help.stdout).toContain(f);
    }
    expect(run("--version").stdout).toMatch(/^stan-server version \d+\.\d+\.\d+/);
  });
});
