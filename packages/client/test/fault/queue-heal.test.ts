import { skipWithoutServerControl } from "@stan-ts/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { channel, client, startServer, take } from "../helpers.js";
import { faultClient } from "./common.js";
import { when } from "./ledger.js";

/**
 * What a queue group keeps when every member heals at once (the streaming server restarts):
 * a durable queue group keeps its unacknowledged messages and redelivers them; a non-durable
 * one is deleted with them when its last member leaves (server-behaviour.md §7), and the
 * member that re-joins starts a new group after the last sequence it received. Documented in
 * RELIABILITY.md as a protocol limit of non-durable queue groups.
 */
describe("fault: a queue group whose members all heal at once", () => {
  beforeEach(skipWithoutServerControl); // every test here restarts, stops or kills it
  for (const durable of [true, false]) {
    it(`${durable ? "durable" : "non-durable"} group: unacknowledged messages are ${durable ? "redelivered" : "dropped with the group, as documented"}`, async () => {
      await using server = await startServer({ store: "file" });
      const ch = channel("qheal");
      await using member = await client(server, faultClient);
      const sub = await member.subscribe(ch, {
        queue: "workers",
        manualAcks: true,
        ackWait: 30_000, // no redelivery by the timer during the test
        ...(durable ? { durableName: "dq" } : {}),
      });
      const msgs = sub[Symbol.asyncIterator]();
      await using pub = await client(server, faultClient);
      for (const n of [1, 2, 3]) await pub.publish(ch, `m${n}`);
      // received and never acked: pending on the group's only member
      expect((await take(msgs, 3)).map((m) => m.string())).toEqual(["m1", "m2", "m3"]);

      const lost = [when(member, "disconnected"), when(pub, "disconnected")];
      await server.stop();
      await Promise.all(lost);
      const healed = [when(member, "reconnected"), when(pub, "reconnected")];
      await server.restart();
      await Promise.all(healed);
      await pub.publish(ch, "m4");

      if (durable) {
        // the re-joining member takes over the group with its pending messages: they come first
        const after = await take(msgs, 4);
        expect(after.map((m) => [m.string(), m.redelivered])).toEqual([
          ["m1", true],
          ["m2", true],
          ["m3", true],
          ["m4", false],
        ]);
        for (const m of after) m.ack();
      } else {
        // the group was deleted with m1..m3 pending; the new group starts after m3
        const [next] = await take(msgs, 1);
        expect([next?.string(), next?.redelivered]).toEqual(["m4", false]);
        next?.ack();
      }
      await sub.close();
    });
  }
});
