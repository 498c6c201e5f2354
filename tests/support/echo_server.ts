/** A TCP echo upstream for tests, bound on a chosen loopback address (port 0 unless given). */
import { createServer, type Server, type Socket } from "node:net";

export interface EchoServer {
  readonly host: string;
  readonly port: number;
  readonly sockets: Set<Socket>;
  /** Connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

export function startEcho(host = "127.0.0.1", port = 0): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    s.pipe(s);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const a = server.address();
      if (!a || typeof a === "string") throw new Error("no address");
      resolve({
        host,
        port: a.port,
        sockets,
        accepted: () => accepted,
        close: () =>
          new Promise<void>((res) => {
            for (const s of sockets) s.destroy();
            server.close(() => res());
          }),
      });
    });
  });
}
