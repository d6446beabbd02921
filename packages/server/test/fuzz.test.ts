/**
 * Issue 15 "Done when": random and hostile protocol messages at the embedded server for a
 * bounded time while a well-behaved client publishes and consumes. Every field of
 * ConnectRequest, PubMsg, SubscriptionRequest, Ack, UnsubscribeRequest, CloseRequest and Ping
 * gets empty, huge, whitespace, control-character, frame-smuggling and out-of-range values,
 * and whole payloads get garbage, truncation and wrong wire types. The server must keep
 * serving: the good client's publishes acked, its deliveries complete and in order, nothing
 * published where a hostile inbox points, no uncaught error.
 *
 * Seeded: FUZZ_SEED=<n> replays a run (the seed is printed); FUZZ_MS sets the duration
 * (default 3000). Embedded mode only: nats-streaming-server 0.25.6 is known to fail it (a
 * crafted inbox makes it publish to any subject; whitespace in one, or one over 4 KB, loses
 * other clients' PubAcks), as hostile.test.ts shows in binary mode.
 */
import {
  AckSchema,
  CloseRequestSchema,
  ConnectRequestSchema,
  ConnectResponseSchema,
  decode,
  encode,
  MsgProtoSchema,
  PingSchema,
  PubAckSchema,
  PubMsgSchema,
  SubscriptionRequestSchema,
  SubscriptionResponseSchema,
  UnsubscribeRequestSchema,
} from "@stan-ts/proto";
import { seededRandom, streamingMode, streamingServer } from "@stan-ts/testing";
import { connect, createInbox, type NatsConnection } from "nats";
import { describe, expect, it } from "vitest";
import { dec, enc, RawClient, uid, until } from "./helpers.js";

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const DURATION = Number(process.env.FUZZ_MS ?? 3000);

/** What a hostile inbox would make the server publish to, if it were written into a frame. */
const TRAP = "fuzz.hijacked";

describe("fuzz: hostile protocol messages while a good client works", () => {
  // the embedded server only (the binary pass of .ci/run would repeat the same run)
  it.skipIf(streamingMode() === "binary")(
    `keeps serving (seed ${SEED}, ${DURATION} ms)`,
    async () => {
      console.log(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED})`);
      const rnd = seededRandom(SEED);
      const int = (n: number) => Math.floor(rnd() * n);
      const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

      const uncaught: unknown[] = [];
      const onError = (err: unknown) => uncaught.push(err);
      process.on("uncaughtException", onError);
      process.on("unhandledRejection", onError);
      await using stan = await streamingServer({ mode: "embedded" });
      try {
        const cid = stan.clusterId;
        const good = await RawClient.connect(stan.url, cid, uid("good"));
        const goodChan = uid("fuzz.good.");
        const resp = good.resp;

        // ------------------------------------------------------------ the good client's view
        const plain: number[] = []; // sequence numbers of good messages, in arrival order
        const plainData: string[] = [];
        const queued = new Map<string, number>(); // good payload -> first-delivery count
        const consume = async (qGroup: string, onMsg: (seq: number, text: string) => void) => {
          const inbox = createInbox();
          let ackInbox = "";
          const early: Array<[bigint, string]> = [];
          good.nc.subscribe(inbox, {
            callback: (_e, m) => {
              const msg = decode(MsgProtoSchema, m.data);
              const text = dec.decode(msg.data);
              const ack = () =>
                good.nc.publish(
                  ackInbox,
                  encode(AckSchema, { subject: goodChan, sequence: msg.sequence }),
                );
              if (ackInbox === "") early.push([msg.sequence, text]);
              else ack();
              if (!msg.redelivered && text.startsWith("good:")) onMsg(Number(msg.sequence), text);
            },
          });
          const r = await good.subRequest({ subject: goodChan, inbox, qGroup, maxInFlight: 64 });
          expect(r.error).toBe("");
          ackInbox = r.ackInbox;
          for (const [sequence] of early) {
            good.nc.publish(ackInbox, encode(AckSchema, { subject: goodChan, sequence }));
          }
          return r.ackInbox;
        };
        const goodAckInbox = await consume("", (seq, text) => {
          plain.push(seq);
          plainData.push(text);
        });
        for (let i = 0; i < 2; i++) {
          await consume("fuzzq", (_seq, text) => queued.set(text, (queued.get(text) ?? 0) + 1));
        }
        let hijacked = 0;
        good.nc.subscribe(`${TRAP}.>`, { callback: () => hijacked++ });
        good.nc.subscribe(TRAP, { callback: () => hijacked++ });
        await good.nc.flush();

        // ------------------------------------------------------------ hostile values
        const maxPayload = good.nc.info?.max_payload ?? 1024 * 1024;
        const hostileIds: string[] = [];
        const ackInboxes: string[] = [goodAckInbox];
        const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
        const strings = (): string =>
          pick([
            () => "",
            () => " ",
            () => "a b c",
            () => "\r\n",
            () => "\t",
            () => "\u0000",
            () => "\u007f",
            () => `_INBOX.x\r\nPUB ${TRAP} 1\r\ny`,
            () => `_INBOX.x 1\r\nX\r\nPUB ${TRAP}`,
            () => `${TRAP} `,
            () => "x".repeat(int(20) === 0 ? 200_000 : 1000 + int(5000)),
            () => "é\u2028\ud800",
            () => dec.decode(randomBytes(int(40))),
            () => String.fromCharCode(...randomBytes(int(30))),
            () => pick(["*", ">", ".", "a..b", ".a", "a.", "a/b", "a.*", "a.>"]),
            () => pick(hostileIds.length > 0 ? hostileIds : ["fz0"]),
            () => goodChan,
            () => uid("fz.ch."),
            () => createInbox(),
            () => pick(ackInboxes),
            // the server's own subjects: a delivery there comes back to it as a request
            () =>
              pick([
                resp.subRequests,
                resp.closeRequests,
                resp.unsubRequests,
                `_STAN.discover.${cid}`,
                `${resp.pubPrefix}.${goodChan}`,
              ]),
            () => `fz${int(20)}`,
            () => "nobody",
          ])();
        const ints = (): number =>
          pick([0, -1, 1, 2, 4, 5, 100, 2 ** 31 - 1, -(2 ** 31), int(2 ** 31), -int(2 ** 31)]);
        const bigints = (): bigint =>
          pick([
            0n,
            1n,
            2n ** 64n - 1n,
            2n ** 53n + 1n,
            BigInt(int(1000)),
            BigInt(int(2 ** 31)) * 1_000_000_000n,
          ]);
        const bytes = (): Uint8Array =>
          pick([
            () => new Uint8Array(),
            () => randomBytes(int(64)),
            () => enc.encode(strings()),
            // near max_payload: with a short envelope its MsgProto would be bigger (item 1)
            () => new Uint8Array(int(10) === 0 ? maxPayload - 64 - int(64) : int(5000)),
            () => enc.encode(`${good.connID}`),
          ])();
        /** A protobuf field with the wrong wire type, or a length past the end. */
        const wrongWire = (): Uint8Array =>
          pick([
            () => Uint8Array.of(0x08 | 0, 0xff, 0xff), // field 1 as a truncated varint
            () => Uint8Array.of(0x0d, 1, 2, 3, 4), // field 1 as fixed32
            () => Uint8Array.of(0x0a, 0x7f, 1, 2), // field 1 length past the end
            () => Uint8Array.of(0x12, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65, 0x28, 0x0a), // string then varint
            () => Uint8Array.of(0x07), // wire type 7
            () => Uint8Array.of(0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01), // a huge field number
            () => Uint8Array.of(0x0b, 0x0c), // group start/end
          ])();
        const payload = (valid: () => Uint8Array): Uint8Array => {
          const r = int(10);
          if (r === 0) return new Uint8Array();
          if (r === 1) return randomBytes(1 + int(200));
          if (r === 2) return wrongWire();
          if (r === 3) {
            const v = valid();
            return v.subarray(0, int(v.length + 1));
          }
          if (r === 4) {
            // a valid message of another type
            return encode(SubscriptionRequestSchema, {
              clientID: strings(),
              inbox: strings(),
              subject: strings(),
            });
          }
          return valid();
        };

        // ------------------------------------------------------------ hostile clients
        const hostile: NatsConnection[] = [];
        for (let i = 0; i < 2; i++) hostile.push(await connect({ servers: stan.url }));
        // some registered hostile clients, so requests get past the client lookup
        for (let i = 0; i < 4; i++) {
          const id = `fz${i}`;
          const hb = createInbox();
          const nc = hostile[i % hostile.length]!;
          nc.subscribe(hb, { callback: (_e, m) => (int(4) > 0 ? m.respond() : undefined) });
          const r = await nc.request(
            `_STAN.discover.${cid}`,
            encode(ConnectRequestSchema, { clientID: id, heartbeatInbox: hb, protocol: 1 }),
            { timeout: 3000 },
          );
          expect(decode(ConnectResponseSchema, r.data).error).toBe("");
          hostileIds.push(id);
        }
        // hostile delivery inboxes with a listener (so deliveries and redeliveries happen)
        for (const nc of hostile) nc.subscribe("_INBOX.>", { callback: () => {} });

        const send = (nc: NatsConnection): void => {
          const kind = int(8);
          const id = int(3) === 0 ? strings() : pick(hostileIds);
          try {
            switch (kind) {
              case 0:
                nc.publish(
                  `_STAN.discover.${cid}`,
                  payload(() =>
                    encode(ConnectRequestSchema, {
                      clientID: int(3) === 0 ? id : `fz${int(8)}`,
                      heartbeatInbox: int(2) === 0 ? createInbox() : strings(),
                      protocol: ints(),
                      connID: bytes(),
                      pingInterval: ints(),
                      pingMaxOut: ints(),
                    }),
                  ),
                  { reply: createInbox() },
                );
                break;
              case 1:
              case 2: {
                if (int(30) === 0) {
                  // item 1's trigger: exactly max_payload, 1-byte guid, no connID, on the good
                  // channel (its MsgProto is bigger than the PubMsg)
                  const pm = (n: number) =>
                    encode(PubMsgSchema, {
                      clientID: pick(hostileIds),
                      guid: "g",
                      subject: goodChan,
                      data: new Uint8Array(n),
                    });
                  const n = maxPayload - 100;
                  nc.publish(`${resp.pubPrefix}.x`, pm(n + maxPayload - pm(n).length), {
                    reply: createInbox(),
                  });
                  break;
                }
                const subject = int(2) === 0 ? goodChan : strings();
                nc.publish(
                  `${resp.pubPrefix}.${pick(["x", "fz.any", goodChan])}`,
                  payload(() =>
                    encode(PubMsgSchema, {
                      clientID: id,
                      guid: int(2) === 0 ? `g${int(1e6)}` : strings(),
                      subject,
                      reply: strings(),
                      data: bytes(),
                      connID: int(2) === 0 ? new Uint8Array() : bytes(),
                      sha256: bytes(),
                    }),
                  ),
                  int(4) === 0 ? {} : { reply: createInbox() },
                );
                break;
              }
              case 3: {
                const reply = createInbox();
                nc.subscribe(reply, {
                  max: 1,
                  callback: (_e, m) => {
                    try {
                      const ack = decode(SubscriptionResponseSchema, m.data).ackInbox;
                      if (ack !== "") ackInboxes.push(ack);
                    } catch {
                      // not a SubscriptionResponse: fine
                    }
                  },
                });
                nc.publish(
                  resp.subRequests,
                  payload(() =>
                    encode(SubscriptionRequestSchema, {
                      clientID: id,
                      subject: int(2) === 0 ? goodChan : strings(),
                      // never the good client's group "fuzzq": its members would take good messages
                      qGroup: int(2) === 0 ? "" : int(2) === 0 ? "fuzzq-h" : strings(),
                      inbox: int(2) === 0 ? createInbox() : strings(),
                      maxInFlight: ints(),
                      ackWaitInSecs: ints(),
                      durableName: int(2) === 0 ? "" : strings(),
                      startPosition: int(7) - 1,
                      startSequence: bigints(),
                      startTimeDelta: BigInt.asIntN(64, pick([bigints(), -bigints()])),
                    }),
                  ),
                  { reply },
                );
                break;
              }
              case 4:
                nc.publish(
                  pick([resp.unsubRequests, resp.subCloseRequests]),
                  payload(() =>
                    encode(UnsubscribeRequestSchema, {
                      clientID: id,
                      subject: int(2) === 0 ? goodChan : strings(),
                      inbox: strings(),
                      durableName: strings(),
                    }),
                  ),
                  { reply: createInbox() },
                );
                break;
              case 5:
                nc.publish(
                  resp.closeRequests,
                  payload(() => encode(CloseRequestSchema, { clientID: id })),
                  { reply: createInbox() },
                );
                break;
              case 6:
                nc.publish(
                  pick(ackInboxes),
                  payload(() =>
                    encode(AckSchema, {
                      subject: int(2) === 0 ? goodChan : strings(),
                      sequence: bigints(),
                    }),
                  ),
                );
                break;
              default:
                nc.publish(
                  `_STAN.discover.${cid}.pings`,
                  payload(() =>
                    encode(PingSchema, { connID: int(2) === 0 ? good.connID : bytes() }),
                  ),
                  int(3) === 0 ? {} : { reply: createInbox() },
                );
            }
          } catch (err) {
            // only the client library's own refusals (a NATS subject it will not send)
            if (!String(err).match(/BAD_SUBJECT|MAX_PAYLOAD|invalid subject/i)) throw err;
          }
        };

        /** A good publish; the deadline is generous: the machine may be loaded, what counts is the ack. */
        const publishGood = async (text: string) => {
          const r = await good.nc.request(
            `${resp.pubPrefix}.${goodChan}`,
            encode(PubMsgSchema, {
              clientID: good.clientID,
              connID: good.connID,
              guid: `${text}-${SEED}`,
              subject: goodChan,
              data: enc.encode(text),
            }),
            { timeout: 20_000 },
          );
          return decode(PubAckSchema, r.data);
        };

        // ------------------------------------------------------------ run
        const deadline = Date.now() + DURATION;
        let sent = 0;
        const attack = (async () => {
          while (Date.now() < deadline) {
            for (const nc of hostile) {
              for (let i = 0; i < 20; i++) send(nc);
              sent += 20;
              await nc.flush();
            }
          }
        })();
        let published = 0;
        const work = (async () => {
          while (Date.now() < deadline) {
            const batch = Array.from({ length: 8 }, () => publishGood(`good:${published++}`));
            for (const a of await Promise.all(batch)) expect(a.error).toBe("");
          }
        })();
        await Promise.all([attack, work]);

        // ------------------------------------------------------------ checks
        const want = Array.from({ length: published }, (_, i) => `good:${i}`);
        await until(
          () => plainData.length >= published && queued.size >= published,
          20_000,
          "the good client's deliveries",
        ).catch(() => {}); // the assertions below say what is missing
        console.log(
          `fuzz: ${sent} hostile messages (${ackInboxes.length - 1} hostile subscriptions accepted), ${published} good publishes`,
        );
        expect(uncaught).toEqual([]);
        expect(hijacked).toBe(0);
        expect(plainData).toEqual(want);
        for (let i = 1; i < plain.length; i++) expect(plain[i]!).toBeGreaterThan(plain[i - 1]!);
        expect([...queued.keys()].sort()).toEqual([...want].sort());
        expect([...queued.values()].every((n) => n === 1)).toBe(true);
        // still serving a newcomer
        const late = await RawClient.connect(stan.url, cid, uid("late"));
        // on the good channel: the hostile clients may have used up MaxChannels
        const ls = await late.subscribe(goodChan);
        expect((await late.publish(goodChan, "late")).error).toBe("");
        await until(() => ls.received.some((m) => dec.decode(m.data) === "late"));
        await late.close();
        for (const nc of hostile) await nc.close();
        await good.close();
      } finally {
        process.off("uncaughtException", onError);
        process.off("unhandledRejection", onError);
      }
    },
    60_000,
  );
});
