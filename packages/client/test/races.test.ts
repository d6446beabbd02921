import { describe, expect, it } from "vitest";
import type { Message } from "../src/index.js";
import { channel, client, iter, publishN, take, useServer } from "./helpers.js";

const srv = useServer();
const texts = (ms: Message[]) => ms.map((m) => m.string());

describe("iterator races (issue 15)", () => {
  it("item 10: overlapping next() calls in auto-ack mode ack every message handed out", async () => {
    await using sc = await client(srv());
    const ch = channel();
    const sub = await sc.subscribe(ch, { durableName: "d10", startAt: "first" });
    const it = iter(sub);
    // both wait on an empty buffer, then both are handed out, unacked
    const both = Promise.all([it.next(), it.next()]);
    await publishN(sc, ch, 3);
    const [a, b] = await both;
    expect([a.value?.string(), b.value?.string()]).toEqual(["m-1", "m-2"]);
    const [c] = await take(it, 1); // asking again acks m-1 and m-2
    expect(c?.string()).toBe("m-3");
    await sub.close(); // m-3 stays unacked
    // The durable resumes: the server redelivers what is unacked, and only that.
    const again = await sc.subscribe(ch, { durableName: "d10", startAt: "first" });
    const [first] = await take(iter(again), 1);
    expect(first?.string()).toBe("m-3");
    expect(first?.redelivered).toBe(true);
    await again.close();
  });

  it("item 15: yield* delegation can end the iteration, and a closed subscription iterates as empty", async () => {
    await using sc = await client(srv());
    const ch = channel();
    await publishN(sc, ch, 2);
    const sub = await sc.subscribe(ch, { startAt: "first" });
    async function* delegate() {
      yield* sub;
    }
    const outer = delegate();
    const r = await outer.next();
    expect(r.value?.string()).toBe("m-1");
    // throw() on the outer generator is forwarded to the subscription's iterator, which
    // closes the subscription and ends (without it, yield* reports a protocol violation)
    await expect(outer.throw(new Error("stop"))).resolves.toEqual({ value: undefined, done: true });
    await sub.closed;
    const seen: Message[] = [];
    for await (const m of sub) seen.push(m); // ends at once instead of throwing
    expect(texts(seen)).toEqual([]);
  });
});
