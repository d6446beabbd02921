/**
 * stan-ts and the official node-nats-streaming 0.3.2 client sharing one server: each reads
 * what the other wrote, a durable made by one resumes in the other, and both serve one queue.
 */
import stan, { type Message as OfficialMessage, type Stan } from "node-nats-streaming";
import { afterAll, describe, expect, it } from "vitest";
import { channel, client, iter, publishN, take, uniqueId, useServer } from "./helpers.js";

const srv = useServer();
const official: Stan[] = [];
afterAll(async () => {
  for (const sc of official)
    await new Promise<void>((r) => {
      sc.once("close", () => r());
      sc.close();
    });
});

function connectOfficial(clientId = uniqueId("official")): Promise<Stan> {
  return new Promise((resolve, reject) => {
    const sc = stan.connect(srv().clusterId, clientId, { url: srv().url });
    sc.once("connect", () => {
      official.push(sc);
      resolve(sc);
    });
    sc.once("error", (e: Error | string) => reject(typeof e === "string" ? new Error(e) : e));
  });
}

function officialPublish(sc: Stan, subject: string, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    sc.publish(subject, data, (err, guid) =>
      err ? reject(new Error(String(err))) : resolve(guid),
    );
  });
}

/** Collects `n` messages from an official subscription. */
function officialCollect(
  sc: Stan,
  subject: string,
  n: number,
  configure: (o: ReturnType<Stan["subscriptionOptions"]>) => void,
  queue?: string,
): Promise<OfficialMessage[]> {
  const opts = sc.subscriptionOptions();
  configure(opts);
  const sub = queue ? sc.subscribe(subject, queue, opts) : sc.subscribe(subject, opts);
  const got: OfficialMessage[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`official got ${got.length}/${n}`)), 10_000);
    sub.on("message", (m: OfficialMessage) => {
      got.push(m);
      if (got.length === n) {
        clearTimeout(timer);
        // close after the handler returned: the official client acks only then
        setImmediate(() => {
          sub.close();
          sub.once("closed", () => resolve(got));
        });
      }
    });
  });
}

describe("interop with node-nats-streaming", () => {
  it("stan-ts publishes, the official client receives", async () => {
    await using sc = await client(srv());
    const theirs = await connectOfficial();
    const ch = channel();
    await publishN(sc, ch, 3, "ours");
    const got = await officialCollect(theirs, ch, 3, (o) => o.setDeliverAllAvailable());
    expect(got.map((m) => m.getData())).toEqual(["ours-1", "ours-2", "ours-3"]);
    expect(got.map((m) => m.getSequence())).toEqual([1, 2, 3]);
  });

  it("the official client publishes, stan-ts receives", async () => {
    await using sc = await client(srv());
    const theirs = await connectOfficial();
    const ch = channel();
    const guids = [];
    for (let i = 1; i <= 3; i++) guids.push(await officialPublish(theirs, ch, `theirs-${i}`));
    expect(new Set(guids).size).toBe(3);
    await using sub = await sc.subscribe(ch, { startAt: "first" });
    const got = await take(iter(sub), 3);
    expect(got.map((m) => m.string())).toEqual(["theirs-1", "theirs-2", "theirs-3"]);
  });

  it("a durable created by stan-ts resumes in the official client (same clientID)", async () => {
    const ch = channel();
    const clientId = uniqueId("shared");
    const sc = await client(srv(), { clientId });
    await publishN(sc, ch, 4);
    const sub = await sc.subscribe(ch, { durableName: "d", startAt: "first", manualAcks: true });
    for (const m of await take(iter(sub), 2)) m.ack();
    await sc.close(); // #3 and #4 were delivered or pending but not acked by us
    const theirs = await connectOfficial(clientId);
    const got = await officialCollect(theirs, ch, 2, (o) => {
      o.setDurableName("d");
      o.setDeliverAllAvailable();
    });
    expect(got.map((m) => m.getSequence())).toEqual([3, 4]);
  });

  it("a durable created by the official client resumes in stan-ts", async () => {
    const ch = channel();
    const clientId = uniqueId("shared");
    const theirs = await connectOfficial(clientId);
    for (let i = 1; i <= 4; i++) await officialPublish(theirs, ch, `m-${i}`);
    await officialCollect(theirs, ch, 2, (o) => {
      o.setDurableName("d");
      o.setDeliverAllAvailable();
      o.setMaxInFlight(2); // auto-ack: #1 and #2 acked, nothing more sent before close
    });
    await new Promise<void>((r) => {
      theirs.once("close", () => r());
      theirs.close();
    });
    official.splice(official.indexOf(theirs), 1);
    await using sc = await client(srv(), { clientId });
    await using sub = await sc.subscribe(ch, { durableName: "d" });
    const got = await take(iter(sub), 2);
    expect(got.map((m) => m.sequence)).toEqual([3n, 4n]);
  });

  it("members from both clients share one queue group", async () => {
    const ch = channel();
    await using ours = await client(srv());
    const theirs = await connectOfficial();
    const seen: Array<["ours" | "theirs", number]> = [];
    let done!: () => void;
    const all = new Promise<void>((r) => {
      done = r;
    });
    const note = (who: "ours" | "theirs", seq: number) => {
      seen.push([who, seq]);
      if (seen.length === 20) done();
    };
    await ours.subscribe(ch, {
      queue: "shared",
      callback: (m) => note("ours", Number(m.sequence)),
    });
    const opts = theirs.subscriptionOptions();
    const theirSub = theirs.subscribe(ch, "shared", opts);
    await new Promise<void>((r) => theirSub.once("ready", () => r()));
    theirSub.on("message", (m: OfficialMessage) => note("theirs", m.getSequence()));
    await publishN(ours, ch, 20);
    await all;
    const seqs = seen.map(([, s]) => s).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(seen.some(([w]) => w === "ours")).toBe(true);
    expect(seen.some(([w]) => w === "theirs")).toBe(true);
    theirSub.close();
  });
});
