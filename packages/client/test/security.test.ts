import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "@stan-ts/server";
import { startNatsServer } from "@stan-ts/testing";
import { type ConnectionOptions, connect as natsConnect, nkeyAuthenticator, nkeys } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, ErrorCode, StanConnectionError } from "../src/index.js";
import { channel, iter, take, uniqueId } from "./helpers.js";

const CID = "secure-cluster";
let dir = "";
let cert = "";
let key = "";

beforeAll(() => {
  // A self-signed certificate for 127.0.0.1, made at test time (needs the openssl CLI).
  dir = mkdtempSync(join(tmpdir(), "stan-ts-tls-"));
  cert = join(dir, "cert.pem");
  key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: "ignore" },
  );
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const userSeed = nkeys.createUser();
const serverSeed = nkeys.createUser();

interface Mode {
  name: string;
  config: () => string;
  /** NATS options of the streaming server and of the client. */
  server: () => Partial<ConnectionOptions>;
  client: () => Partial<ConnectionOptions>;
}

const modes: Mode[] = [
  {
    name: "TLS",
    config: () => `tls { cert_file: "${cert}", key_file: "${key}" }`,
    server: () => ({ tls: { caFile: cert } }),
    client: () => ({ tls: { caFile: cert } }),
  },
  {
    name: "token",
    config: () => `authorization { token: "s3cret-token" }`,
    server: () => ({ token: "s3cret-token" }),
    client: () => ({ token: "s3cret-token" }),
  },
  {
    name: "user/password",
    config: () =>
      `authorization { users = [ { user: stan, password: "srv-pw" }, { user: app, password: "app-pw" } ] }`,
    server: () => ({ user: "stan", pass: "srv-pw" }),
    client: () => ({ user: "app", pass: "app-pw" }),
  },
  {
    name: "nkey",
    config: () =>
      `authorization { users = [ { nkey: ${serverSeed.getPublicKey()} }, { nkey: ${userSeed.getPublicKey()} } ] }`,
    server: () => ({ authenticator: nkeyAuthenticator(serverSeed.getSeed()) }),
    client: () => ({ authenticator: nkeyAuthenticator(userSeed.getSeed()) }),
  },
  {
    name: "TLS + user/password",
    config: () =>
      `tls { cert_file: "${cert}", key_file: "${key}" }\nauthorization { users = [ { user: stan, password: "srv-pw" }, { user: app, password: "app-pw" } ] }`,
    server: () => ({ tls: { caFile: cert }, user: "stan", pass: "srv-pw" }),
    client: () => ({ tls: { caFile: cert }, user: "app", pass: "app-pw" }),
  },
];

describe("secured NATS: the SDK and the embedded server pass NATS options through", () => {
  it.each(modes)("$name", async (mode) => {
    await using nats = await startNatsServer({ config: mode.config() });
    await using server = await startServer({
      natsUrl: nats.url,
      clusterId: CID,
      natsOptions: mode.server(),
      logLevel: "silent",
    });
    await using sc = await connect({
      clusterId: CID,
      clientId: uniqueId(),
      servers: nats.url,
      natsOptions: mode.client(),
    });
    const ch = channel("sec");
    const sub = await sc.subscribe(ch, { startAt: "first" });
    await sc.publish(ch, "secret");
    expect((await take(iter(sub), 1))[0]?.string()).toBe("secret");
    expect(server.protocolErrors).toBe(0);
    // without the credentials (or the CA), NATS refuses the first connection: CONNECT_FAILED
    const refused = await connect({
      clusterId: CID,
      clientId: uniqueId(),
      servers: nats.url,
      natsOptions: { maxReconnectAttempts: 0, reconnect: false, timeout: 2000 },
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StanConnectionError);
    expect((refused as StanConnectionError).code).toBe(ErrorCode.ConnectFailed);
    expect((refused as StanConnectionError).message).toMatch(
      /^stan: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: /,
    );
  });
});

/**
 * The NATS permissions a stan-ts client needs (README, "NATS permissions"), for cluster ID
 * CID and the default discover prefix. The streaming server has its own user.
 */
const clientPermissions = `{
  publish: {
    allow: ["_STAN.discover.${CID}", "_STAN.discover.${CID}.pings", "_STAN.pub.${CID}.>",
            "_STAN.sub.${CID}", "_STAN.unsub.${CID}", "_STAN.subclose.${CID}", "_STAN.close.${CID}",
            "_INBOX.>"]
  }
  subscribe: { allow: ["_INBOX.>", "_STAN.acks.>"] }
}`;

describe("least privilege", () => {
  it("a client with exactly the documented permissions connects, publishes, subscribes, acks, unsubscribes and closes", async () => {
    await using nats = await startNatsServer({
      config: `authorization { users = [
        { user: stan, password: "srv-pw" },
        { user: app, password: "app-pw", permissions: ${clientPermissions} }
      ] }`,
    });
    await using server = await startServer({
      natsUrl: nats.url,
      clusterId: CID,
      natsOptions: { user: "stan", pass: "srv-pw" },
      logLevel: "silent",
    });
    const natsOptions = { user: "app", pass: "app-pw" };
    const sc = await connect({
      clusterId: CID,
      clientId: uniqueId(),
      servers: nats.url,
      natsOptions,
      pingInterval: 200, // pings must get through too: a denied ping would end the session
    });
    const statuses: string[] = [];
    void (async () => {
      for await (const s of sc.status()) statuses.push(s.type);
    })();
    const ch = channel("lp");
    const durable = await sc.subscribe(ch, {
      startAt: "first",
      durableName: "d",
      manualAcks: true,
      ackWait: 1000,
    });
    const queue = await sc.subscribe(ch, { queue: "q", startAt: "first" });
    for (let i = 1; i <= 3; i++) await sc.publish(ch, `m${i}`);
    const dIt = iter(durable);
    const got = await take(dIt, 3);
    for (const m of got) m.ack();
    expect(got.map((m) => m.string())).toEqual(["m1", "m2", "m3"]);
    expect((await take(iter(queue), 3)).map((m) => m.string())).toEqual(["m1", "m2", "m3"]);
    await sc.publish(ch, "m4"); // acks of m1..m3 were accepted: nothing is redelivered before m4
    const [next] = await take(dIt, 1);
    expect(next?.string()).toBe("m4");
    expect(next?.redelivered).toBe(false);
    // Pings: only an absence can be observed. Quiet period of 4 ping intervals: a denied ping
    // subject would show as "ping-missed".
    await new Promise((r) => setTimeout(r, 800));
    expect(statuses).not.toContain("ping-missed");
    await durable.unsubscribe(); // the unsubscribe request is allowed
    await sc.close(); // the close request is allowed
    expect(server.protocolErrors).toBe(0);
    // and one subject outside the list is refused by NATS (the permissions are really applied)
    const raw = await natsConnect({ servers: nats.url, ...natsOptions });
    const denied = new Promise<string>((resolve) => {
      void (async () => {
        for await (const s of raw.status()) {
          if (s.type === "error") resolve(String(s.data));
        }
      })();
    });
    raw.publish("orders.new", new Uint8Array(1));
    expect(await denied).toMatch(/permissions[ _]violation/i);
    await raw.close();
  });
});
