import { encode, PubAckSchema } from "@stan-ts/proto";
import { connect as natsConnect } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connect,
  ErrorCode,
  type Message,
  type NatsConnectionLike,
  StanArgumentError,
  type StanConnection,
  StanConnectionError,
  type StanError,
  StanSubscriptionError,
  type Status,
  type Subscription,
} from "../src/index.js";
import { channel, client, iter, take, uniqueId, useServer } from "./helpers.js";

const srv = useServer();

interface Ctx {
  sc: StanConnection;
  closed: StanConnection;
  closedSubMsg: Message;
  autoMsg: Message;
  iterated: Subscription;
  otherSubMsg: Message;
  ownSub: Subscription;
}

type ErrorClass = new (...args: never[]) => StanError;

interface Case {
  name: string;
  run: (c: Ctx) => unknown;
  error: ErrorClass;
  code: ErrorCode;
  message: string | RegExp;
}

const A = StanArgumentError;
const INV = ErrorCode.InvalidArgument;
const long = "a".repeat(256);
const circular: Record<string, unknown> = {};
circular.self = circular;
const int = (what: string, v: string, min: number) =>
  `stan: invalid ${what}: ${v} (expected an integer from ${min} to 2147483647)`;
const conn = (over: Record<string, unknown>) => () =>
  connect({ clusterId: srv().clusterId, clientId: uniqueId(), servers: srv().url, ...over });

const cases: Case[] = [
  // subjects, on publish and subscribe
  ...(["publish", "subscribe"] as const).flatMap((call): Case[] => {
    const f = (s: string) => (c: Ctx) =>
      call === "publish" ? c.sc.publish(s, "x") : c.sc.subscribe(s);
    return [
      {
        name: `${call}: empty subject`,
        run: f(""),
        error: A,
        code: INV,
        message: "stan: invalid subject: subject must be a non-empty string",
      },
      {
        name: `${call}: wildcard *`,
        run: f("a.*"),
        error: A,
        code: INV,
        message: 'stan: invalid subject "a.*": wildcards (* and >) are not allowed in a channel',
      },
      {
        name: `${call}: wildcard >`,
        run: f("a.>"),
        error: A,
        code: INV,
        message: 'stan: invalid subject "a.>": wildcards (* and >) are not allowed in a channel',
      },
      {
        name: `${call}: empty token`,
        run: f("a..b"),
        error: A,
        code: INV,
        message: `stan: invalid subject "a..b": empty tokens (leading, trailing or double '.')`,
      },
      {
        name: `${call}: whitespace`,
        run: f("a b"),
        error: A,
        code: INV,
        message: `stan: invalid subject "a b": whitespace and '/' are not allowed`,
      },
      {
        name: `${call}: 256-byte subject`,
        run: f(long),
        error: A,
        code: INV,
        message: `stan: invalid subject "${"a".repeat(32)}...": 256 bytes, over the limit of 255 (a file store keeps each channel in a directory of that name)`,
      },
    ];
  }),
  {
    name: "publishAsync: wildcard",
    run: (c) => c.sc.publishAsync("x.*", "x"),
    error: A,
    code: INV,
    message: /wildcards/,
  },
  {
    name: "publishBatch: wildcard",
    run: (c) => c.sc.publishBatch("x.>", ["x"]),
    error: A,
    code: INV,
    message: /wildcards/,
  },
  // clientIDs and connect options
  {
    name: "connect: empty clientId",
    run: conn({ clientId: "" }),
    error: A,
    code: INV,
    message: "stan: clientID missing: give a non-empty clientId of letters, digits, '-' or '_'",
  },
  {
    name: "connect: clientId with a dot",
    run: conn({ clientId: "a.b" }),
    error: A,
    code: INV,
    message: 'stan: invalid clientID "a.b": only alphanumeric and `-` or `_` characters allowed',
  },
  {
    name: "connect: non-ASCII clientId",
    run: conn({ clientId: "café" }),
    error: A,
    code: INV,
    message: /^stan: invalid clientID "café"/,
  },
  {
    name: "connect: empty clusterId",
    run: conn({ clusterId: "" }),
    error: A,
    code: INV,
    message: /^stan: clusterId missing/,
  },
  {
    name: "connect: pingInterval below 100 ms",
    run: conn({ pingInterval: 50 }),
    error: A,
    code: INV,
    message: int("pingInterval (ms)", "50", 100),
  },
  {
    name: "connect: maxPubAcksInflight 0",
    run: conn({ maxPubAcksInflight: 0 }),
    error: A,
    code: INV,
    message: int("maxPubAcksInflight", "0", 1),
  },
  {
    name: "connect: non-integer pubAckTimeout",
    run: conn({ pubAckTimeout: 1.5 }),
    error: A,
    code: INV,
    message: int("pubAckTimeout (ms)", "1.5", 1),
  },
  // subscription options
  {
    name: "subscribe: ':' in a durable queue name",
    run: (c) => c.sc.subscribe(channel(), { queue: "q", durableName: "a:b" }),
    error: A,
    code: INV,
    message: "stan: durable name of a durable queue subscriber can't contain the character ':'",
  },
  ...[999, 0, -1000, 1500.5, 2 ** 31].map(
    (v): Case => ({
      name: `subscribe: ackWait ${v}`,
      run: (c) => c.sc.subscribe(channel(), { ackWait: v }),
      error: A,
      code: INV,
      message: int("ackWait (ms, at least 1000)", String(v), 1000),
    }),
  ),
  ...[0, -1, 2.5, 2 ** 31].map(
    (v): Case => ({
      name: `subscribe: maxInflight ${v}`,
      run: (c) => c.sc.subscribe(channel(), { maxInflight: v }),
      error: A,
      code: INV,
      message: int("maxInflight", String(v), 1),
    }),
  ),
  ...[-1, 0, 1.5, -1n, 2n ** 64n].map(
    (v): Case => ({
      name: `subscribe: start sequence ${String(v)}`,
      run: (c) => c.sc.subscribe(channel(), { startAt: { sequence: v } }),
      error: A,
      code: INV,
      message: `stan: invalid start sequence ${String(v)}: a whole number >= 1 (bigint past 2^53)`,
    }),
  ),
  {
    name: "subscribe: start time in the future",
    run: (c) => c.sc.subscribe(channel(), { startAt: { time: new Date(Date.now() + 60_000) } }),
    error: A,
    code: INV,
    message: /^stan: invalid start time .*: it is in the future \(use "new-only"\)$/,
  },
  {
    name: "subscribe: invalid Date",
    run: (c) => c.sc.subscribe(channel(), { startAt: { time: new Date(Number.NaN) } }),
    error: A,
    code: INV,
    message: "stan: invalid start time: give a valid Date",
  },
  {
    name: "subscribe: negative delta",
    run: (c) => c.sc.subscribe(channel(), { startAt: { ago: -1 } }),
    error: A,
    code: INV,
    message: "stan: invalid start delta -1: milliseconds >= 0",
  },
  // payloads
  {
    name: "publish: payload over max_payload",
    run: (c) => c.sc.publish(channel(), new Uint8Array(1024 * 1024)),
    error: A,
    code: ErrorCode.MaxPayloadExceeded,
    message:
      /^stan: payload too large: 1048576 bytes of data make a \d+-byte message, over the NATS server's max_payload of 1048576$/,
  },
  {
    name: "publish: circular JSON",
    run: (c) => c.sc.publish(channel(), circular),
    error: A,
    code: INV,
    message:
      /^stan: data is not JSON-serializable \(.*circular.*\): pass a Uint8Array, a string or a JSON value$/is,
  },
  {
    name: "publish: bigint",
    // @ts-expect-error bigint is not a Payload; at run time it is refused as well
    run: (c) => c.sc.publish(channel(), 1n),
    error: A,
    code: INV,
    message: /^stan: data is not JSON-serializable \(.*BigInt.*\)/,
  },
  {
    name: "publish: a function",
    run: (c) => c.sc.publish(channel(), () => 1),
    error: A,
    code: INV,
    message:
      "stan: data of type function is not JSON-serializable: pass a Uint8Array, a string or a JSON value",
  },
  // after close
  ...(
    [
      ["publish", (c: Ctx) => c.closed.publish(channel(), "x")],
      ["publishAsync", (c: Ctx) => c.closed.publishAsync(channel(), "x")],
      ["publishBatch", (c: Ctx) => c.closed.publishBatch(channel(), ["x"])],
      ["subscribe", (c: Ctx) => c.closed.subscribe(channel())],
    ] as const
  ).map(
    ([what, run]): Case => ({
      name: `${what} after close`,
      run,
      error: StanConnectionError,
      code: ErrorCode.ConnectionClosed,
      message: "stan: connection closed",
    }),
  ),
  {
    name: "ack of a message from a closed subscription",
    run: (c) => c.closedSubMsg.ack(),
    error: StanSubscriptionError,
    code: ErrorCode.InvalidSubscription,
    message: "stan: invalid subscription",
  },
  {
    name: "manual ack in auto-ack mode",
    run: (c) => c.autoMsg.ack(),
    error: StanSubscriptionError,
    code: ErrorCode.ManualAckInAutoAckMode,
    message: "stan: cannot manually ack in auto-ack mode",
  },
  {
    name: "sub.ack of another subscription's message",
    run: (c) => c.ownSub.ack(c.otherSubMsg),
    error: StanSubscriptionError,
    code: ErrorCode.InvalidSubscription,
    message: "stan: invalid subscription: the message belongs to another subscription",
  },
  {
    name: "a second iterator",
    run: (c) => c.iterated[Symbol.asyncIterator](),
    error: StanSubscriptionError,
    code: ErrorCode.AlreadyIterating,
    message:
      /^stan: subscription on ".*" is already being iterated: a subscription has a single consumer$/,
  },
];

describe("bad input: every public call with invalid arguments", () => {
  let ctx: Ctx;
  let probe: AsyncIterator<Message>;
  const probeCh = channel("probe");
  let n = 0;

  beforeAll(async () => {
    const sc = await client(srv());
    const closed = await client(srv());
    await closed.close();
    const ch = channel();
    const manual = await sc.subscribe(ch, { manualAcks: true, startAt: "first" });
    const auto = await sc.subscribe(ch, { startAt: "first" });
    await sc.publish(ch, "m");
    const [closedSubMsg] = await take(iter(manual), 1);
    const autoIt = iter(auto);
    const [autoMsg] = await take(autoIt, 1);
    await manual.close();
    const ownSub = await sc.subscribe(ch, { manualAcks: true });
    probe = iter(await sc.subscribe(probeCh));
    ctx = {
      sc,
      closed,
      closedSubMsg: closedSubMsg as Message,
      autoMsg: autoMsg as Message,
      iterated: auto,
      otherSubMsg: closedSubMsg as Message,
      ownSub,
    };
  });
  afterAll(async () => {
    await ctx?.sc.close();
  });

  it.each(cases)("$name", async (c) => {
    let err: unknown;
    try {
      await c.run(ctx);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(c.error);
    expect((err as StanError).code).toBe(c.code);
    if (typeof c.message === "string") expect((err as StanError).message).toBe(c.message);
    else expect((err as StanError).message).toMatch(c.message);
    // the connection keeps working: a publish is acked and a subscription receives it
    const text = `ok-${++n}`;
    await ctx.sc.publish(probeCh, text);
    expect((await take(probe, 1))[0]?.string()).toBe(text);
    expect(ctx.sc.isOpen).toBe(true);
  });
});

describe("malformed protocol messages from the network", () => {
  it("on the delivery, PubAck and heartbeat inboxes: counted, reported, dropped; the connection keeps working", async () => {
    const raw = await natsConnect({ servers: srv().url });
    const subjects: string[] = [];
    const nc: NatsConnectionLike = {
      get info() {
        return raw.info;
      },
      publish: (s, p, o) => raw.publish(s, p, o),
      request: (s, p, o) => raw.request(s, p, { timeout: o?.timeout ?? 2000 }),
      flush: () => raw.flush(),
      closed: () => raw.closed(),
      isClosed: () => raw.isClosed(),
      close: () => raw.close(),
      subscribe: (s, o) => {
        subjects.push(s);
        return raw.subscribe(s, o?.callback ? { callback: o.callback } : {});
      },
    };
    await using sc = await connect({
      clusterId: srv().clusterId,
      clientId: uniqueId(),
      nc,
    });
    const errors: Status[] = [];
    void (async () => {
      for await (const s of sc.status()) if (s.type === "protocol-error") errors.push(s);
    })();
    const ch = channel();
    const sub = await sc.subscribe(ch);
    const it = iter(sub);
    const [hbInbox, pubAckInbox, deliveryInbox] = subjects as [string, string, string];
    expect(pubAckInbox).toMatch(/^_STAN\.acks\./);
    const attacker = await natsConnect({ servers: srv().url });
    const garbage = new Uint8Array([
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    const truncated = new Uint8Array([0x12, 0x10, 0x61, 0x62]); // a 16-byte string with 2 bytes
    const wrongType = encode(PubAckSchema, { guid: "not-a-message", error: "x" });
    const injected: Array<[string, Uint8Array]> = [
      [deliveryInbox, garbage],
      [deliveryInbox, truncated],
      [deliveryInbox, wrongType], // decodes, but has no sequence: not a MsgProto
      [deliveryInbox, new Uint8Array(0)],
      [pubAckInbox, garbage],
      [pubAckInbox, truncated],
      [pubAckInbox, new Uint8Array(0)], // a PubAck for no publish
    ];
    for (const [s, d] of injected) attacker.publish(s, d);
    // The heartbeat inbox only answers; its payload is never decoded, so nothing to count.
    const hb = await attacker.request(hbInbox, garbage, { timeout: 2000 });
    expect(hb.data.length).toBe(0);
    await attacker.flush();
    await sc.publish(ch, "after"); // a PubAck after the injections: they were handled
    expect((await take(it, 1)).map((m) => [m.sequence, m.string()])).toEqual([[1n, "after"]]);
    expect(errors).toHaveLength(injected.length);
    for (const e of errors) {
      if (e.type !== "protocol-error") throw new Error("unexpected");
      expect(e.error.code).toBe(ErrorCode.ProtocolError);
    }
    expect(sub.pending).toBe(0); // nothing malformed was handed to the consumer
    await attacker.close();
    await sc.close();
    await raw.close();
  });
});
