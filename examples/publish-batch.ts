// Bulk publishing: one call, one promise for the whole batch, and per-message failures to retry.
import { connect } from "stan-ts";
import { streamingServer } from "./lib/server.js";

await using server = await streamingServer();
await using sc = await connect({
  clusterId: server.clusterId,
  clientId: "bulk-loader",
  servers: server.url,
});

const orders = Array.from({ length: 10_000 }, (_, i) => ({ id: i + 1, total: (i % 97) + 0.5 }));
// Sent in order within the ack window; resolves once every message is stored or has failed.
// A failure is reported by index, so exactly those are re-sent (at-least-once, as always).
let todo = orders;
for (let attempt = 1; todo.length > 0; attempt++) {
  const { guids, failures } = await sc.publishBatch("orders", todo);
  console.log(`attempt ${attempt}: stored ${guids.length - failures.length} of ${todo.length}`);
  if (attempt === 3 && failures.length > 0) throw failures[0]?.error;
  todo = failures.map((f) => todo[f.index] as (typeof orders)[number]);
}

await using sub = await sc.subscribe("orders", { startAt: { sequence: orders.length } });
for await (const msg of sub) {
  console.log(`last stored: #${msg.sequence} ${msg.string()}`);
  break;
}
