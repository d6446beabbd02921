// Every start position: where a new subscription begins in the stored stream.
import { connect, type Message, type StanConnection, type StartAt } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
await using sc = await connect({
  clusterId: server.clusterId,
  clientId: "start-positions",
  servers: server.url,
});

for (let i = 1; i <= 5; i++) await sc.publish("foo", `msg-${i}`);

/** Subscribes at `startAt` and returns the first `n` messages it replays. */
async function replay(conn: StanConnection, startAt: StartAt, n: number): Promise<Message[]> {
  const got: Message[] = [];
  await using sub = await conn.subscribe("foo", { startAt });
  for await (const msg of sub) {
    got.push(msg);
    if (got.length === n) break;
  }
  return got;
}

const show = (label: string, msgs: Message[]) =>
  console.log(`${label}: ${msgs.map((m) => `${m.sequence}=${m.string()}`).join(" ")}`);

show("last received", await replay(sc, "last-received", 1));
show("all available", await replay(sc, "first", 5));
show("from sequence 3", await replay(sc, { sequence: 3 }, 3));
show("last 2 minutes", await replay(sc, { ago: 2 * 60_000 }, 5));
show("since a time", await replay(sc, { time: new Date(Date.now() - 60_000) }, 5));

// new-only (the default) skips what is stored and waits for the next publish
await using fresh = await sc.subscribe("foo");
await sc.publish("foo", "msg-6");
for await (const msg of fresh) {
  console.log(`new only: ${msg.sequence}=${msg.string()}`);
  break;
}
