// Raw-protocol publisher: measures the server's publish->PubAck capacity without a STAN client in the way.
import {
  ConnectRequestSchema,
  ConnectResponseSchema,
  decode,
  encode,
  PubMsgSchema,
} from "@stan-ts/proto";
import { connect, createInbox } from "nats";

const url = process.argv[2]!;
const nc = await connect({ servers: url });
const hb = createInbox();
nc.subscribe(hb, { callback: (_e, m) => m.respond() });
const cr = decode(
  ConnectResponseSchema,
  (
    await nc.request(
      "_STAN.discover.test-cluster",
      encode(ConnectRequestSchema, { clientID: `raw${process.pid}`, heartbeatInbox: hb }),
      { timeout: 2000 },
    )
  ).data,
);
const N = 200000,
  W = 16384;
const ackInbox = createInbox();
const payload = new Uint8Array(128);
const msgs = Array.from({ length: 64 }, (_, i) =>
  encode(PubMsgSchema, {
    clientID: `raw${process.pid}`,
    guid: `g${i}`,
    subject: "raw",
    data: payload,
  }),
);
let sent = 0,
  acked = 0;
const t0 = performance.now();
await new Promise<void>((res) => {
  const pump = () => {
    while (sent < N && sent - acked < W) {
      nc.publish(`${cr.pubPrefix}.raw`, msgs[sent % 64]!, { reply: ackInbox });
      sent++;
    }
  };
  nc.subscribe(ackInbox, {
    callback: () => {
      acked++;
      if (acked === N) res();
      else if (sent - acked < W / 2) pump();
    },
  });
  pump();
});
console.log("raw publish", Math.round(N / ((performance.now() - t0) / 1000)), "acks/s");
await nc.close();
