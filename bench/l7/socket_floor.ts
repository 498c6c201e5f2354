// deno-lint-ignore-file no-console
/**
 * The socket-layer floor of an HTTP/1.1 keep-alive proxy on Bun: a fixed tiny parser (request
 * heads without bodies, responses framed by content-length), one upstream connection per
 * downstream connection, no weft logic. `--native`: Bun.listen/Bun.connect; default node:net.
 * `--upstream host:port`; prints `{"port": N}` when listening. For measuring what the runtime's
 * socket layer costs per request (bench/l7/README in ARCHITECTURE.md); runs on Bun only.
 */
import net from "node:net";
import process from "node:process";

const argv = process.argv.slice(2);
const [upHost, upPort] = (argv[argv.indexOf("--upstream") + 1] ?? "127.0.0.1:8080").split(":");
const CRLF2 = Buffer.from("\r\n\r\n");
const CL = Buffer.from("content-length:");

/** Bytes of complete messages at the front of `buf` (0 if none): heads end at CRLFCRLF and are
 * followed by content-length bytes of body. */
function complete(buf: Buffer): number {
  let at = 0;
  for (;;) {
    const end = buf.indexOf(CRLF2, at);
    if (end < 0) return at;
    const head = buf.subarray(at, end).toString("latin1").toLowerCase();
    const i = head.indexOf(CL.toString());
    const len = i < 0 ? 0 : parseInt(head.slice(i + CL.length), 10);
    if (end + 4 + len > buf.length) return at;
    at = end + 4 + len;
  }
}

interface Pipe {
  pending: Buffer;
  send(b: Buffer): void;
}
function feed(p: Pipe, chunk: Buffer): void {
  const buf = p.pending.length ? Buffer.concat([p.pending, chunk]) : chunk;
  const n = complete(buf);
  if (n > 0) p.send(buf.subarray(0, n));
  p.pending = buf.subarray(n);
}

if (argv.includes("--native")) {
  // deno-lint-ignore no-explicit-any
  const Bun = (globalThis as any).Bun;
  type S = {
    data: { peer?: S; pipe: Pipe; out?: Buffer | undefined };
    write(b: Buffer): number;
    end(): void;
  };
  const writeAll = (s: S, b: Buffer): void => {
    if (s.data.out) {
      s.data.out = Buffer.concat([s.data.out, b]);
      return;
    }
    const n = s.write(b);
    if (n < b.length) s.data.out = b.subarray(n);
  };
  const drain = (s: S): void => {
    const out = s.data.out;
    if (!out) return;
    s.data.out = undefined;
    writeAll(s, out);
  };
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(down: S) {
        down.data = { pipe: { pending: Buffer.alloc(0), send: () => {} } };
        const pendingReq: Buffer[] = [];
        down.data.pipe.send = (b) => {
          if (down.data.peer) writeAll(down.data.peer, b);
          else pendingReq.push(Buffer.from(b));
        };
        Bun.connect({
          hostname: upHost,
          port: Number(upPort),
          socket: {
            open(up: S) {
              up.data = {
                peer: down,
                pipe: { pending: Buffer.alloc(0), send: (b) => writeAll(down, b) },
              };
              down.data.peer = up;
              for (const b of pendingReq.splice(0)) writeAll(up, b);
            },
            data(up: S, chunk: Buffer) {
              feed(up.data.pipe, chunk);
            },
            drain,
            close() {
              down.end();
            },
            error() {},
          },
        }).catch(() => down.end());
      },
      data(down: S, chunk: Buffer) {
        feed(down.data.pipe, chunk);
      },
      drain,
      close(down: S) {
        down.data.peer?.end();
      },
      error() {},
    },
  });
  console.log(JSON.stringify({ port: server.port }));
} else {
  const server = net.createServer((down) => {
    down.setNoDelay(true);
    const up = net.connect(Number(upPort), upHost);
    up.setNoDelay(true);
    const req: Pipe = { pending: Buffer.alloc(0), send: (b) => up.write(b) };
    const res: Pipe = { pending: Buffer.alloc(0), send: (b) => down.write(b) };
    down.on("data", (c: Buffer) => feed(req, c));
    up.on("data", (c: Buffer) => feed(res, c));
    down.on("close", () => up.destroy());
    up.on("close", () => down.destroy());
    down.on("error", () => {});
    up.on("error", () => {});
  });
  server.listen(0, "127.0.0.1", () => {
    console.log(JSON.stringify({ port: (server.address() as net.AddressInfo).port }));
  });
}
