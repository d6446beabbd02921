// Self-healing: the streaming server goes away and comes back; the client reconnects with the
// same clientID, re-creates its subscription and re-sends what was not acknowledged.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, startServer } from "@stan-ts/server";
import { connect } from "stan-ts";

// This example runs its own NATS and file-store streaming server, to stop and restart the latter.
const nats = await startNatsServer();
const dir = mkdtempSync(join(tmpdir(), "stan-ts-heal-"));
let server = await startServer({ natsUrl: nats.url, store: "file", dir });

await using sc = await connect({
  clusterId: server.clusterId,
  clientId: "self-healing",
  servers: server.url,
  pingInterval: 250, // detect the loss quickly for the demo
  pingMaxOut: 2,
});
// Print the session's status events; `reached(type)` resolves when one of that type is seen.
const waiting = new Map<string, () => void>();
const reached = (type: string) =>
  new Promise<void>((resolve) => {
    waiting.set(type, resolve);
  });
const log = (async () => {
  for await (const s of sc.status()) {
    if (s.type !== "ping-missed" && s.type !== "reconnecting") console.log(`status: ${s.type}`);
    waiting.get(s.type)?.();
  }
})();

await using sub = await sc.subscribe("events", { startAt: "first" });
const it = sub[Symbol.asyncIterator]();
await sc.publish("events", "before");
console.log(`got ${(await it.next()).value?.string()}`);

// The streaming server goes away (NATS stays up) ...
const disconnected = reached("disconnected");
await server.close();
await disconnected;
const during = sc.publish("events", "during the outage"); // waits, then is sent once healed
// ... and comes back with its data
const reconnected = reached("reconnected");
server = await startServer({ natsUrl: nats.url, store: "file", dir });
await reconnected;
console.log(`publish made during the outage acked: ${(await during).length === 22}`);
console.log(`got ${(await it.next()).value?.string()}`);
await sc.close();
await log;
await server.close();
await nats.stop();
