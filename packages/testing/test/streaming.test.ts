import { ConnectRequestSchema, ConnectResponseSchema, decode, encode } from "@stan-ts/proto";
import { connect, createInbox } from "nats";
import { describe, expect, it } from "vitest";
import { skipWithoutServerControl, streamingMode, streamingServer } from "../src/index.js";

async function connectOnce(url: string, clusterId: string): Promise<string> {
  const nc = await connect({ servers: url });
  try {
    const hb = createInbox();
    nc.subscribe(hb, { callback: (_e, m) => m.respond() });
    const r = await nc.request(
      `_STAN.discover.${clusterId}`,
      encode(ConnectRequestSchema, { clientID: `h${Date.now()}`, heartbeatInbox: hb }),
      { timeout: 3000 },
    );
    return decode(ConnectResponseSchema, r.data).error || "ok";
  } finally {
    await nc.close();
  }
}

describe("streamingServer harness", () => {
  it("uses the mode it is given over the environment's", async () => {
    const saved = process.env.NATS_STREAMING_SERVER;
    process.env.NATS_STREAMING_SERVER = "/nonexistent/nats-streaming-server";
    try {
      expect(streamingMode()).not.toBe("embedded");
      await using stan = await streamingServer({ mode: "embedded" });
      expect(stan.mode).toBe("embedded");
      expect(await connectOnce(stan.url, stan.clusterId)).toBe("ok");
    } finally {
      if (saved === undefined) delete process.env.NATS_STREAMING_SERVER;
      else process.env.NATS_STREAMING_SERVER = saved;
    }
  });

  it("starts, restarts the streaming server and the nats-server, and kills", async (ctx) => {
    skipWithoutServerControl(ctx);
    await using stan = await streamingServer({ store: "file" });
    expect(stan.mode).toBe(streamingMode());
    expect(stan.canRestart).toBe(true);
    expect(stan.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(await connectOnce(stan.url, stan.clusterId)).toBe("ok");
    await stan.restart();
    expect(await connectOnce(stan.url, stan.clusterId)).toBe("ok");
    const pid = stan.nats?.pid;
    await stan.restartNats();
    expect(stan.nats?.pid).not.toBe(pid);
    // the streaming server reconnects to the restarted nats-server
    let result = "";
    for (let i = 0; i < 100 && result !== "ok"; i++) {
      result = await connectOnce(stan.url, stan.clusterId).catch(() => "");
      if (result !== "ok") await new Promise((r) => setTimeout(r, 100));
    }
    expect(result).toBe("ok");
    await stan.kill();
    await stan.restart();
    expect(await connectOnce(stan.url, stan.clusterId)).toBe("ok");
  });

  it.skipIf(streamingMode() !== "external")("external mode refuses restart and kill", async () => {
    await using stan = await streamingServer();
    expect(stan.canRestart).toBe(false);
    await expect(stan.restart()).rejects.toThrow("not supported");
  });
});
