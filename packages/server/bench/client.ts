import stan from "node-nats-streaming";

const url = process.argv[2]!;
const sc = stan.connect("test-cluster", `bench${process.pid}`, { url });
await new Promise((r) => sc.on("connect", r));
const N = 100000,
  W = 16384;
const payload = Buffer.alloc(128, 97);
const t0 = performance.now();
await new Promise<void>((res) => {
  let sent = 0,
    acked = 0;
  const pump = () => {
    while (sent < N && sent - acked < W) {
      sent++;
      sc.publish("foo", payload, (err) => {
        if (err) throw err;
        acked++;
        if (acked === N) res();
        else if (sent - acked < W / 2) pump();
      });
    }
  };
  pump();
});
const t1 = performance.now();
console.log("publish", Math.round(N / ((t1 - t0) / 1000)), "msg/s");
const sub = sc.subscribe(
  "foo",
  sc.subscriptionOptions().setDeliverAllAvailable().setMaxInFlight(16384),
);
let got = 0;
await new Promise<void>((res) =>
  sub.on("message", () => {
    if (++got === N) res();
  }),
);
console.log("replay", Math.round(N / ((performance.now() - t1) / 1000)), "msg/s");
sc.close();
process.exit(0);
