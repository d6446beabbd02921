// Queue groups: each message goes to one member of the group; plain subscribers still get all.
import { connect, type StanConnection } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
const clients: StanConnection[] = [];
for (const id of ["client-1", "client-2", "client-3"]) {
  clients.push(await connect({ clusterId: server.clusterId, clientId: id, servers: server.url }));
}

let queued = 0;
let regular = 0;
const perMember = new Map<string, number>();
let resolveAll!: () => void;
const allIn = new Promise<void>((resolve) => {
  resolveAll = resolve;
});
const check = () => {
  if (queued === 40 && regular === 3 * 40) resolveAll();
};
for (const sc of clients) {
  // a member of the queue group "bar"
  await sc.subscribe("foo", {
    queue: "bar",
    callback: () => {
      queued++;
      perMember.set(sc.clientId, (perMember.get(sc.clientId) ?? 0) + 1);
      check();
    },
  });
  // and a regular subscriber on the same channel
  await sc.subscribe("foo", {
    callback: () => {
      regular++;
      check();
    },
  });
}

for (let i = 0; i < 40; i++) await clients[0]?.publish("foo", `hello-${i}`);
await allIn;

console.log(`queue group "bar" received ${queued} messages, each exactly once`);
console.log(`every member got some: ${[...perMember.values()].every((n) => n > 0)}`);
console.log(`regular subscribers received ${regular} (40 each)`);

// when the last member leaves, a (non-durable) queue group is removed
for (const sc of clients) await sc.close();
