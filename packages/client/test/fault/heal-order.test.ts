import { skipWithoutServerControl } from "@stan-ts/testing";
import { beforeEach, describe, expect, it } from "vitest";
import { channel, client, iter, startServer, take } from "../helpers.js";
import { faultClient } from "./common.js";
import { when } from "./ledger.js";

describe("heal: publish order across a heal", () => {
  beforeEach(skipWithoutServerControl); // every test here restarts, stops or kills it
  it("publishes waiting through the outage are stored before those made while subscriptions are re-created", async () => {
    await using server = await startServer({ store: "file" });
    await using sc = await client(server, faultClient);
    const ch = channel("order");
    // A subscription on the publishing connection: the heal re-creates it (a request and
    // its reply) before it is done.
    await using sub = await sc.subscribe(ch);
    const disconnected = when(sc, "disconnected");
    await server.stop();
    await disconnected;
    const first = sc.publish(ch, "first"); // waits in the window through the outage
    let second: Promise<string> | undefined;
    // The heal's handshake reports "connected" before subscriptions are re-created: an
    // application publishing as soon as it sees the session back must not overtake "first".
    const sawConnected = (async () => {
      for await (const s of sc.status()) {
        if (s.type === "connected") {
          second = sc.publish(ch, "second");
          return;
        }
      }
    })();
    const reconnected = when(sc, "reconnected");
    await server.restart();
    await Promise.all([sawConnected, reconnected]);
    await Promise.all([first, second]);
    await using reader = await sc.subscribe(ch, { startAt: "first" });
    const got = await take(iter(reader), 2);
    expect(got.map((m) => m.string())).toEqual(["first", "second"]);
    void sub;
  });
});
