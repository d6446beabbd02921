import { connect } from "stan-ts";
import { describe, expect, test } from "vitest";
import { jsonLines, spawnStan, unique, useServer } from "./helpers.js";

const server = useServer();

const env = () => ({ NATS_URL: server().url, STAN_CLUSTER_ID: server().clusterId });

async function publish(subject: string, ...messages: string[]): Promise<void> {
  await using sc = await connect({
    clusterId: server().clusterId,
    clientId: unique("pub"),
    servers: server().url,
  });
  for (const m of messages) await sc.publish(subject, m);
}

describe("the stan bin (spawned through tsx)", () => {
  test("exit codes: 0 for --version, 2 for a usage error, 1 for a wrong cluster ID", async () => {
    const version = spawnStan(["--version"]);
    const usage = spawnStan(["sub", "orders", "--all", "--seq", "3"]);
    const wrong = spawnStan(["pub", "-c", "wrong-cluster", "orders", "x"], env());
    expect(await version.exit()).toBe(0);
    expect(version.stdout.text).toMatch(/^stan \d+\.\d+\.\d+/);
    expect(await usage.exit()).toBe(2);
    expect(usage.stderr.text).toContain("stan sub: choose one start position");
    expect(await wrong.exit()).toBe(1);
    expect(wrong.stderr.text).toContain(
      "stan: connect request timeout (possibly wrong cluster ID?)",
    );
    expect(wrong.stderr.text).toContain("hint:");
  });

  test("SIGINT closes a durable subscription cleanly (exit 0); a new run resumes after it", async () => {
    const subject = unique("durable");
    const id = unique("cli");
    await publish(subject, "m1", "m2", "m3");
    const args = [
      "sub",
      subject,
      "--durable",
      "keep",
      "--id",
      id,
      "--manual-ack",
      "--format",
      "json",
    ];

    const first = spawnStan([...args, "--all"], env());
    await first.stdout.waitForLines(3);
    first.child.kill("SIGINT");
    expect(await first.exit()).toBe(0);
    expect(jsonLines(first.stdout.text).map((m) => m.data)).toEqual(["m1", "m2", "m3"]);

    await publish(subject, "m4", "m5");
    // The start position is ignored when the durable resumes: it continues at m4.
    const second = spawnStan([...args, "--all"], env());
    await second.stdout.waitForLines(2);
    second.child.kill("SIGINT");
    expect(await second.exit()).toBe(0);
    const resumed = jsonLines(second.stdout.text);
    expect(resumed.map((m) => m.data)).toEqual(["m4", "m5"]);
    expect(resumed.map((m) => m.sequence)).toEqual(["4", "5"]);
  });

  test("a reader that goes away (`stan sub x | head -1`): exit 0, no EPIPE crash", async () => {
    const subject = unique("pipe");
    const sub = spawnStan(["sub", subject], env());
    await sub.stderr.waitFor((t) => t.includes("stan: listening on"), "the subscription");
    await publish(subject, "m1");
    await sub.stdout.waitForLines(1);
    sub.child.stdout?.destroy(); // what `head -1` does once it has its line
    await publish(subject, "m2"); // the next write finds the pipe closed
    expect(await sub.exit()).toBe(0);
    expect(sub.stderr.text).not.toMatch(/EPIPE|Unhandled|node:events/);
  });

  test("SIGINT while waiting for messages exits 0 without output", async () => {
    const sub = spawnStan(["sub", unique()], env());
    await sub.stderr.waitFor((t) => t.includes("stan: listening on"), "the subscription");
    sub.child.kill("SIGINT");
    expect(await sub.exit()).toBe(0);
    expect(sub.stdout.text).toBe("");
  });
});
