import { connect } from "stan-ts";
import { describe, expect, test } from "vitest";
import { jsonLines, listening, stan, stanDone, unique, useServer } from "./helpers.js";

const server = useServer();

/** Publishes lines through `stan pub <subject> -` and returns their guids. */
async function publish(subject: string, ...messages: string[]): Promise<string[]> {
  const r = await stanDone(["pub", subject, "-"], {
    server: server(),
    stdin: messages.map((m) => `${m}\n`),
  });
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return r.stdout.split("\n").filter((l) => l !== "");
}

/** Runs `stan sub` with `--count n --format json` and returns the messages. */
async function receive(subject: string, n: number, ...flags: string[]) {
  const r = await stanDone(["sub", subject, "--count", String(n), "--format", "json", ...flags], {
    server: server(),
  });
  expect(r.code).toBe(0);
  return jsonLines(r.stdout);
}

describe("stan pub and stan sub", () => {
  test("round-trip a message: sub waits, pub prints the guid, sub prints the message", async () => {
    const subject = unique();
    const sub = stan(["sub", subject], { server: server() });
    await listening(sub);
    const pub = await stanDone(["pub", subject, "hello world"], { server: server() });
    expect(pub.code).toBe(0);
    expect(pub.stdout).toMatch(/^[A-Za-z0-9]{22}\n$/);
    await sub.stdout.waitForLines(1);
    expect(sub.stdout.lines[0]).toMatch(
      new RegExp(`^\\[#1\\] \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${subject}: hello world$`),
    );
    sub.interrupt();
    expect(await sub.code).toBe(0);
    expect(sub.stderr.text).toContain(`listening on "${subject}"`);
    expect(sub.stderr.text).toContain("start: new only");
  });

  test("pub - publishes each stdin line in order; --quiet prints the count", async () => {
    const subject = unique();
    const guids = await publish(subject, "one", "two", "three");
    expect(guids).toHaveLength(3);
    expect(new Set(guids).size).toBe(3);
    const q = await stanDone(["pub", subject, "-", "--quiet"], {
      server: server(),
      stdin: ["four\nfi", "ve\r\nsix"],
    });
    expect(q).toMatchObject({ code: 0, stdout: "3\n", stderr: "" });
    const msgs = await receive(subject, 6, "--all");
    expect(msgs.map((m) => m.data)).toEqual(["one", "two", "three", "four", "five", "six"]);
  });

  test("pub --json checks data and stdin lines; blank lines are skipped", async () => {
    const subject = unique();
    const ok = await stanDone(["pub", subject, "--json", '{"id":1}'], { server: server() });
    expect(ok.code).toBe(0);
    const lines = await stanDone(["pub", subject, "--json", "-", "-q"], {
      server: server(),
      stdin: ['{"id":2}\n', "\n", "[3]\n", "not json\n", '{"id":5}\n'],
    });
    expect(lines.code).toBe(1);
    expect(lines.stdout).toBe("2\n");
    expect(lines.stderr).toContain("stdin line 4 is not valid JSON");
    const msgs = await receive(subject, 3, "--all");
    expect(msgs.map((m) => m.data)).toEqual(['{"id":1}', '{"id":2}', "[3]"]);
  });

  test("--format json: subject, sequence as a string, ISO timestamp, redelivered, data", async () => {
    const subject = unique();
    await publish(subject, "héllo");
    await using sc = await connect({
      clusterId: server().clusterId,
      clientId: unique("raw"),
      servers: server().url,
    });
    await sc.publish(subject, new Uint8Array([0xff, 0xfe, 0x00, 0x01]));
    const [text, binary] = await receive(subject, 2, "--all");
    expect(text).toEqual({
      subject,
      sequence: "1",
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      redelivered: false,
      data: "héllo",
    });
    expect(binary).toMatchObject({ sequence: "2", data: "//4AAQ==", encoding: "base64" });
    const r = await stanDone(["sub", subject, "--seq", "2", "-n", "1"], { server: server() });
    expect(r.stdout).toContain("<4 bytes, base64> //4AAQ==");
  });
});

describe("start positions", () => {
  let subject = "";
  let published = new Date();

  test("setup: three messages", async () => {
    subject = unique("start");
    published = new Date(Date.now() - 1000);
    await publish(subject, "m1", "m2", "m3");
  });

  const seqs = (msgs: Array<Record<string, unknown>>) => msgs.map((m) => m.sequence);

  test("--all and --first deliver every stored message", async () => {
    expect(seqs(await receive(subject, 3, "--all"))).toEqual(["1", "2", "3"]);
    expect(seqs(await receive(subject, 3, "--first"))).toEqual(["1", "2", "3"]);
  });

  test("--last starts at the last stored message", async () => {
    expect(seqs(await receive(subject, 1, "--last"))).toEqual(["3"]);
  });

  test("--seq N starts at sequence N", async () => {
    expect(seqs(await receive(subject, 2, "--seq", "2"))).toEqual(["2", "3"]);
  });

  test("--since <duration> starts at the first message of that window", async () => {
    expect(seqs(await receive(subject, 3, "--since", "1h"))).toEqual(["1", "2", "3"]);
  });

  test("--time <ISO date> starts at the first message stored since then", async () => {
    expect(seqs(await receive(subject, 3, "--time", published.toISOString()))).toEqual([
      "1",
      "2",
      "3",
    ]);
  });

  test("--new-only (the default) skips stored messages", async () => {
    for (const flags of [["--new-only"], []]) {
      const sub = stan(["sub", subject, "--format", "json", "-n", "1", ...flags], {
        server: server(),
      });
      await listening(sub);
      await publish(subject, "new");
      expect(await sub.code).toBe(0);
      const [msg] = jsonLines(sub.stdout.text);
      expect(msg?.data).toBe("new");
      expect(Number(msg?.sequence)).toBeGreaterThan(3);
    }
  });
});

describe("subscription options", () => {
  test("--queue: members of a group share the messages", async () => {
    const subject = unique();
    const members = [0, 1].map(() =>
      stan(["sub", subject, "--queue", "workers", "--format", "json"], { server: server() }),
    );
    for (const m of members) await listening(m);
    expect(members[0]?.stderr.text).toContain("queue workers");
    await publish(subject, "a", "b", "c", "d", "e", "f");
    const total = () => members.reduce((n, m) => n + m.stdout.lines.length, 0);
    await members[0]?.stdout.waitFor(() => total() >= 6, "six messages across the group");
    for (const m of members) m.interrupt();
    for (const m of members) expect(await m.code).toBe(0);
    const data = members.flatMap((m) => jsonLines(m.stdout.text).map((j) => j.data));
    expect(data.sort()).toEqual(["a", "b", "c", "d", "e", "f"]);
  });

  test("--durable with --manual-ack resumes after the last acknowledged message", async () => {
    const subject = unique();
    const id = unique("durable-client");
    await publish(subject, "1", "2", "3");
    const flags = ["--durable", "d1", "--id", id, "--manual-ack", "--format", "json"];
    const first = await stanDone(["sub", subject, "--all", "-n", "2", ...flags], {
      server: server(),
    });
    expect(first.code).toBe(0);
    expect(jsonLines(first.stdout).map((m) => m.data)).toEqual(["1", "2"]);
    const again = await stanDone(["sub", subject, "--all", "-n", "1", ...flags], {
      server: server(),
    });
    expect(jsonLines(again.stdout).map((m) => m.data)).toEqual(["3"]);
  });

  test("--max-inflight and --ack-wait are passed on: unacked messages are redelivered", async () => {
    const subject = unique();
    await publish(subject, "x");
    const sub = stan(
      ["sub", subject, "--all", "--max-inflight", "1", "--ack-wait", "1s", "--format", "json"],
      { server: server() },
    );
    await sub.stdout.waitForLines(1);
    sub.interrupt();
    expect(await sub.code).toBe(0);
    expect(jsonLines(sub.stdout.text)[0]).toMatchObject({ data: "x", redelivered: false });
  });
});

describe("Ctrl-C", () => {
  test("stops pub reading a stdin that never ends: what was acked is printed, exit 130", async () => {
    const subject = unique();
    let release = (): void => {};
    const terminal = (async function* () {
      yield "typed\n";
      // ... and then the user types nothing more.
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    })();
    const r = stan(["pub", subject, "-"], { server: server(), stdin: terminal });
    await r.stdout.waitForLines(1);
    r.interrupt();
    expect(await r.code).toBe(130);
    release();
    expect(r.stdout.lines).toHaveLength(1);
  });

  test("interrupts a bench: exit 130, 'interrupted' and the figures so far", async () => {
    const r = stan(["bench", "--msgs", "1000000", "--sub", "1", "--progress"], {
      server: server(),
    });
    await r.stderr.waitFor((t) => /published [1-9]/.test(t), "some progress");
    r.interrupt();
    expect(await r.code).toBe(130);
    expect(r.stderr.text).toMatch(
      /stan bench: interrupted: [1-9]\d* of 1000000 messages published, \d+ of 1000000 received/,
    );
    expect(r.stdout.text).toContain(" Pub stats: ");
  });
});

describe("runtime errors exit 1 with an actionable message", () => {
  test("wrong cluster ID: the official text and a hint", async () => {
    const r = await stanDone(["pub", "-c", "no-such-cluster", unique(), "x"], {
      server: server(),
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("stan: connect request timeout (possibly wrong cluster ID?)\n");
    expect(r.stderr).toContain('hint: no NATS Streaming server with cluster ID "no-such-cluster"');
  });

  test("no NATS server: where it tried and what to do", async () => {
    const r = await stanDone(["sub", "-s", "nats://127.0.0.1:1", unique()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("stan: cannot connect to NATS at nats://127.0.0.1:1");
    expect(r.stderr).toContain("hint: is a NATS server running at nats://127.0.0.1:1?");
  });

  test("a clientID already in use", async () => {
    const id = unique("taken");
    const holder = stan(["sub", unique(), "--id", id], { server: server() });
    await listening(holder);
    const r = await stanDone(["pub", "--id", id, unique(), "x"], { server: server() });
    holder.interrupt();
    expect(await holder.code).toBe(0);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("clientID already registered");
    expect(r.stderr).toContain("choose another --id");
  });

  test("an invalid subject is a usage error", async () => {
    const r = await stanDone(["pub", "a..b", "x"], { server: server() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("stan pub:");
  });
});
