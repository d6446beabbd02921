// Every example runs as a user would run it (`tsx examples/<name>.ts`), on a server of its own
// from the harness (examples/lib/server.ts): the embedded one, or the nats-streaming-server
// binary when NATS_STREAMING_SERVER is set. Never on a STAN_URL server: the examples use fixed
// channels, durable names and client IDs, and print sequence numbers that only a fresh server
// gives, so STAN_URL is cleared for them. What each prints is checked.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const dir = fileURLToPath(new URL("..", import.meta.url));

function run(name: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--conditions=@stan-ts/source", `${name}.ts`],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, STAN_URL: "" } },
    );
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      out += c;
    });
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      err += c;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not finish in 45 s\n${out}\n${err}`));
    }, 45_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

const expected: Record<string, RegExp[]> = {
  quickstart: [
    /^streaming server ready at nats:\/\/127\.0\.0\.1:\d+ \(cluster "test-cluster"\)$/m,
    /^connected as "quickstart"$/m,
    /^published; the server acknowledged guid [0-9A-Za-z]{22}$/m,
    /^received #1 on "greetings": hello, NATS Streaming$/m,
    /^round trip complete$/m,
  ],
  basic: [
    /^Received a message \(seq=1\): hello\nReceived a message \(seq=2\): world$/m,
    /^borrowed NATS connection closed: true$/m,
  ],
  "start-positions": [
    /^last received: 5=msg-5$/m,
    /^all available: 1=msg-1 2=msg-2 3=msg-3 4=msg-4 5=msg-5$/m,
    /^from sequence 3: 3=msg-3 4=msg-4 5=msg-5$/m,
    /^last 2 minutes: 1=msg-1 2=msg-2 3=msg-3 4=msg-4 5=msg-5$/m,
    /^since a time: 1=msg-1 2=msg-2 3=msg-3 4=msg-4 5=msg-5$/m,
    /^new only: 6=msg-6$/m,
  ],
  durable: [
    /^first run: processed up to #40$/m,
    /^second run: resumed at #41, received 40 messages$/m,
  ],
  "queue-groups": [
    /^queue group "bar" received 40 messages, each exactly once$/m,
    /^every member got some: true$/m,
    /^regular subscribers received 120 \(40 each\)$/m,
  ],
  "durable-queue-group": [
    /^worker-a processed jobs 1-10 and left; the group is now empty$/m,
    /^worker-b continued with: job-11, job-12, job-13, job-14, job-15$/m,
    /^refused: stan: durable name of a durable queue subscriber can't contain the character ':'$/m,
  ],
  jetstream: [/^#1 \{"id":1\}\n#2 \{"id":2\}\n#3 \{"id":3\}$/m],
  "async-publish": [
    /^published 1024 messages, 1024 acks received$/m,
    /^replayed all 1024, last sequence #1024$/m,
  ],
  "embedded-server": [
    /^stored 3 messages; stopping the streaming server$/m,
    /^after the restart: #1 entry 1, #2 entry 2, #3 entry 3$/m,
  ],
  "publish-batch": [
    /^attempt 1: stored 10000 of 10000$/m,
    /^last stored: #10000 \{"id":10000,"total":8\.5\}$/m,
  ],
  "manual-acks": [
    /^got #1 task-1\ngot #2 task-2\ngot #3 task-3\ngot #2 task-2 \(redelivery #1\)$/m,
  ],
  errors: [
    /^CONNECT_TIMEOUT: stan: connect request timeout \(possibly wrong cluster ID\?\)$/m,
    /^INVALID_ARGUMENT: stan: invalid subject "orders\.\*": wildcards/m,
    /^INVALID_ARGUMENT: stan: invalid subject: subject must be a non-empty string$/m,
    /^INVALID_ARGUMENT: stan: invalid subject "a\.\.b": empty tokens/m,
    /^SERVER_ERROR: stan: duplicate durable registration$/m,
    /^stan error: true, payload too large: true$/m,
    /^still connected: true, subscription open: true$/m,
  ],
  cancellation: [
    /^aborted: true \(cause: Error: shutting down\)$/m,
    /^got quick$/m,
    /^connection open inside the block: true$/m,
    /^closed on scope exit$/m,
  ],
  "self-healing": [
    /^got before\nstatus: disconnected\nstatus: connected\nstatus: republished\nstatus: resubscribed\nstatus: reconnected\npublish made during the outage acked: true\ngot during the outage\nstatus: closed$/m,
  ],
  "publisher-rate-limit": [
    /^2048 published; never more than (\d+) awaiting an ack \(limit 512\)$/m,
  ],
  "subscriber-rate-limit": [
    /^received 2048; the client never buffered more than (\d+) \(limit 128\)$/m,
  ],
};

describe("examples (seed parity), run on the embedded default server", () => {
  it.each(Object.keys(expected))("%s", async (name) => {
    const { code, out, err } = await run(name);
    expect(err).toBe("");
    expect(code).toBe(0);
    for (const re of expected[name] ?? []) expect(out).toMatch(re);
    if (name === "publisher-rate-limit") {
      expect(Number(/never more than (\d+)/.exec(out)?.[1])).toBeLessThanOrEqual(512);
    }
    if (name === "subscriber-rate-limit") {
      expect(Number(/more than (\d+)/.exec(out)?.[1])).toBeLessThanOrEqual(128);
    }
  });
});
