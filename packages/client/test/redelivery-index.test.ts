import { describe, expect, it } from "vitest";
import { SubscriptionImpl } from "../src/subscription.js";

const msg = (sequence: number, redelivered: boolean) => ({
  sequence: BigInt(sequence),
  subject: "s",
  reply: "",
  data: new Uint8Array(0),
  timestamp: 0n,
  redelivered,
  redeliveryCount: redelivered ? 1 : 0,
});

describe("redelivery de-duplication (issue 15 item 9)", () => {
  it("a redelivery replaces its buffered message in constant time; the buffer stays bounded", async () => {
    const n = 40_000;
    const sub = new SubscriptionImpl("s", undefined, undefined, true);
    for (let i = 1; i <= n; i++) sub.deliver(msg(i, false));
    // a paused consumer: every message is redelivered once per ackWait, newest first (the
    // worst case for a scan from the buffer's head)
    const t0 = performance.now();
    for (let round = 0; round < 3; round++) {
      for (let i = n; i >= 1; i--) sub.deliver(msg(i, true));
    }
    const ms = performance.now() - t0;
    expect(sub.pending).toBe(n);
    // the old scan took ~n^2/2 comparisons per round (seconds); the index takes milliseconds
    expect(ms).toBeLessThan(1_000);
    // consumed in order, each the latest copy; a redelivery after its message was taken is new
    const it = sub[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value?.sequence).toBe(1n);
    expect(first.value?.redelivered).toBe(true);
    sub.deliver(msg(1, true));
    expect(sub.pending).toBe(n);
    sub.end();
  });
});
