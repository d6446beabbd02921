import { describe, expect, test } from "vitest";
import { type BenchSample, benchSummary } from "../src/index.js";
import { stan, stanDone, useServer } from "./helpers.js";

const server = useServer();

describe("stan bench", () => {
  test("a small run prints a stan-bench summary with per-client lines", async () => {
    const r = await stanDone(
      ["bench", "--pub", "2", "--sub", "2", "--msgs", "200", "--size", "64", "--progress"],
      { server: server() },
    );
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain("Starting benchmark [msgs=200, msgsize=64, pubs=2, subs=2, async=false]");
    expect(out).toMatch(/^NATS Streaming Pub\/Sub stats: [\d,]+ msgs\/sec ~ [\d.]+ MB\/sec$/m);
    expect(out).toMatch(/^ Pub stats: [\d,]+ msgs\/sec ~ [\d.]+ MB\/sec$/m);
    expect(out).toMatch(/^ Sub stats: [\d,]+ msgs\/sec ~ [\d.]+ MB\/sec$/m);
    expect(out).toMatch(/^ {2}\[1\] [\d,]+ msgs\/sec ~ [\d.]+ MB\/sec \(100 msgs\)$/m);
    expect(out).toMatch(/^ {2}\[2\] [\d,]+ msgs\/sec ~ [\d.]+ MB\/sec \(200 msgs\)$/m);
    expect(
      out.match(/^ {2}min [\d,]+ \| avg [\d,]+ \| max [\d,]+ \| stddev [\d,]+ msgs$/gm),
    ).toHaveLength(2);
    // The progress bar (forced with --progress) ends complete.
    expect(r.stderr).toContain("100%  published 200/200  received 400/400");
  });

  test("--async publishes pipelined; no progress bar when stderr is not a terminal", async () => {
    const r = await stanDone(["bench", "--msgs", "300", "--async"], { server: server() });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("async=true");
    expect(r.stdout).toMatch(/^NATS Streaming Pub stats: /m);
    expect(r.stdout).toContain("(300 msgs)");
    expect(r.stdout).not.toContain("Sub stats");
  });

  test("benchSummary: rates, aggregate over the whole span, min/avg/max/stddev", () => {
    const mb = 1024 * 1024;
    const pubs: BenchSample[] = [
      { msgs: 1000, bytes: mb, start: 0, end: 1000 },
      { msgs: 3000, bytes: 3 * mb, start: 0, end: 1000 },
    ];
    const subs: BenchSample[] = [{ msgs: 4000, bytes: 4 * mb, start: 0, end: 2000 }];
    expect(benchSummary(pubs, subs)).toBe(
      [
        "NATS Streaming Pub/Sub stats: 4,000 msgs/sec ~ 4.00 MB/sec",
        " Pub stats: 4,000 msgs/sec ~ 4.00 MB/sec",
        "  [1] 1,000 msgs/sec ~ 1.00 MB/sec (1000 msgs)",
        "  [2] 3,000 msgs/sec ~ 3.00 MB/sec (3000 msgs)",
        "  min 1,000 | avg 2,000 | max 3,000 | stddev 1,000 msgs",
        " Sub stats: 2,000 msgs/sec ~ 2.00 MB/sec",
        "  [1] 2,000 msgs/sec ~ 2.00 MB/sec (4000 msgs)",
        "  min 2,000 | avg 2,000 | max 2,000 | stddev 0 msgs",
        "",
      ].join("\n"),
    );
  });
});

describe("stan server", () => {
  test("runs the embedded server until Ctrl-C; pub and sub work against it", async () => {
    const srv = stan(["server", "-c", "cli-cluster", "-l", "silent", "-p", "0"]);
    await srv.stderr.waitFor((t) => t.includes("streaming server ready"), "the server", 20_000);
    const url = /ready on (nats:\/\/\S+)/.exec(srv.stderr.text)?.[1] ?? "";
    expect(srv.stderr.text).toContain('(cluster ID "cli-cluster")');
    const flags = ["-s", url, "-c", "cli-cluster"];
    expect((await stanDone(["pub", ...flags, "srv.test", "ping"])).code).toBe(0);
    const sub = await stanDone(["sub", ...flags, "srv.test", "--all", "-n", "1"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain("srv.test: ping");
    srv.interrupt();
    expect(await srv.code).toBe(0);
    const after = await stanDone(["pub", ...flags, "srv.test", "ping"]);
    expect(after.code).toBe(1);
  });
});
