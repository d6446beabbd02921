// The TCP proxy the cluster harness (cluster.ts) puts on each route between two nodes, so a
// test can partition the cluster (cut the routes) and heal it without root.
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { HarnessError } from "./nats-server.js";

/** A TCP proxy for the route connections from one node to another; `cut()` partitions them. */
export class RouteProxy {
  private readonly sockets = new Set<Socket>();
  private blocked = false;
  private readonly server: Server;

  private constructor(
    readonly from: string,
    readonly to: string,
    targetPort: number,
  ) {
    this.server = createServer((inbound) => {
      if (this.blocked) {
        inbound.destroy();
        return;
      }
      const outbound = tcpConnect(targetPort, "127.0.0.1");
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on("error", () => {}); // the peer went away: the close below ends both sides
        s.on("close", () => {
          this.sockets.delete(s);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
  }

  /** Listens on a free loopback port and forwards to `targetPort`. */
  static async start(from: string, to: string, targetPort: number): Promise<RouteProxy> {
    const p = new RouteProxy(from, to, targetPort);
    await new Promise<void>((resolve, reject) => {
      p.server.once("error", reject);
      p.server.listen(0, "127.0.0.1", () => resolve());
    });
    return p;
  }

  get url(): string {
    const a = this.server.address();
    if (a === null || typeof a === "string") throw new HarnessError("route proxy not listening");
    return `nats://127.0.0.1:${a.port}`;
  }

  cut(): void {
    this.blocked = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.blocked = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
