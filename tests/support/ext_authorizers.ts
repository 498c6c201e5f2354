/**
 * Real external authorizers for the ext_authz tests, on loopback:
 *  - HTTP (node:http), Envoy's HTTP ext_authz protocol: by the checked path, `/deny` answers 401
 *    with x-reason/x-other headers and a body; `/slow` never answers; `/boom` answers 503;
 *    `/garbage` writes bytes that are no HTTP and closes; `/reset` drops the connection; `/huge`
 *    denies with a 2 MiB body (over the 1 MiB cap); anything else answers 200 with x-user,
 *    x-hidden, x-seen and `x-envoy-auth-headers-to-remove: x-strip`.
 *  - gRPC (grpc-js on node:http2): `envoy.service.auth.v3.Authorization/Check`, CheckRequest
 *    decoded and CheckResponse encoded with @bufbuild/protobuf's wire codec (not weft's):
 *    `/deny` → DeniedHttpResponse 418 with x-reason, a header name no HTTP allows and a body;
 *    `/garbage` → bytes that are no CheckResponse; `/slow` never answers; `/frame` → OK that sets
 *    or removes framing and hop-by-hop headers upstream and downstream; else OK with x-user: bob.
 * Each records what it was asked.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

export interface SeenHttp {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpAuthorizer {
  readonly port: number;
  readonly seen: SeenHttp[];
  close(): Promise<void>;
}

export async function startHttpAuthorizer(): Promise<HttpAuthorizer> {
  const seen: SeenHttp[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const s: SeenHttp = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body: "",
    };
    seen.push(s);
    req.setEncoding("utf8");
    req.on("data", (c: string) => (s.body += c));
    req.on("end", () => answer(req, res));
  });
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "";
    if (url.includes("/slow")) return; // held until the test closes the server
    if (url.includes("/garbage")) {
      req.socket.end("\x00\x01 not http at all\r\n\r\n");
      return;
    }
    if (url.includes("/reset")) {
      req.socket.destroy();
      return;
    }
    if (url.includes("/huge")) {
      res.writeHead(401).end(new Uint8Array(2 << 20).fill(97));
      return;
    }
    if (url.includes("/boom")) {
      res.writeHead(503).end("down");
      return;
    }
    if (url.includes("/deny")) {
      res.writeHead(401, { "x-reason": "nope", "x-other": "hidden", "content-type": "text/plain" })
        .end("denied by authz");
      return;
    }
    res.writeHead(200, {
      "x-user": "alice",
      "x-hidden": "no",
      "x-seen": "yes",
      "x-envoy-auth-headers-to-remove": "x-strip",
    }).end();
  };
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface SeenGrpc {
  path: string;
  method: string;
  host: string;
  sourcePrincipal: string;
  headers: Record<string, string>;
}

export interface GrpcAuthorizer {
  readonly port: number;
  readonly seen: SeenGrpc[];
  close(): void;
}

function decodeCheck(b: Uint8Array): SeenGrpc {
  const out: SeenGrpc = { path: "", method: "", host: "", sourcePrincipal: "", headers: {} };
  const walk = (bytes: Uint8Array, on: (f: number, r: BinaryReader, w: WireType) => boolean) => {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [f, w] = r.tag();
      if (!on(f, r, w)) r.skip(w);
    }
  };
  walk(b, (f, r) => {
    if (f !== 1) return false;
    walk(r.bytes(), (af, ar) => {
      if (af === 1) {
        walk(ar.bytes(), (pf, pr) => {
          if (pf !== 4) return false;
          out.sourcePrincipal = pr.string();
          return true;
        });
        return true;
      }
      if (af !== 4) return false;
      walk(ar.bytes(), (rf, rr) => {
        if (rf !== 2) return false;
        walk(rr.bytes(), (hf, hr) => {
          if (hf === 2) out.method = hr.string();
          else if (hf === 4) out.path = hr.string();
          else if (hf === 5) out.host = hr.string();
          else if (hf === 3) {
            let k = "";
            let v = "";
            walk(hr.bytes(), (ef, er) => {
              if (ef === 1) k = er.string();
              else if (ef === 2) v = er.string();
              else return false;
              return true;
            });
            out.headers[k] = v;
          } else return false;
          return true;
        });
        return true;
      });
      return true;
    });
    return true;
  });
  return out;
}

function header(w: BinaryWriter, field: number, key: string, value: string): void {
  w.tag(field, WireType.LengthDelimited).fork();
  w.tag(1, WireType.LengthDelimited).fork();
  w.tag(1, WireType.LengthDelimited).string(key).tag(2, WireType.LengthDelimited).string(value);
  w.join().join();
}

function checkResponse(seen: SeenGrpc): Uint8Array {
  const w = new BinaryWriter();
  if (seen.path.includes("/garbage")) {
    return Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1]);
  }
  if (seen.path.includes("/deny")) {
    w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int32(7).join();
    w.tag(2, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int32(418).join();
    header(w, 2, "x-reason", "grpc-no");
    header(w, 2, "bad name\r\nx-injected", "1");
    w.tag(3, WireType.LengthDelimited).string("grpc denied");
    w.join();
  } else if (seen.path.includes("/frame")) {
    // An OK answer that tries to change the framing of the upstream request (set and removed)
    // and of the client's response.
    w.tag(1, WireType.LengthDelimited).fork().join();
    w.tag(3, WireType.LengthDelimited).fork();
    header(w, 2, "x-user", "bob");
    header(w, 2, "transfer-encoding", "chunked");
    header(w, 2, "connection", "close");
    if (seen.path.includes("/frame-cl")) header(w, 2, "content-length", "0");
    else w.tag(5, WireType.LengthDelimited).string("content-length");
    header(w, 6, "content-length", "0");
    header(w, 6, "transfer-encoding", "chunked");
    header(w, 6, "x-note", "ok");
    w.join();
  } else {
    w.tag(1, WireType.LengthDelimited).fork().join(); // status{code: 0}
    w.tag(3, WireType.LengthDelimited).fork();
    header(w, 2, "x-user", "bob");
    w.join();
  }
  return w.finish();
}

export async function startGrpcAuthorizer(): Promise<GrpcAuthorizer> {
  const seen: SeenGrpc[] = [];
  const server = new grpc.Server();
  const raw = (b: Uint8Array) => Buffer.from(b);
  const bytes = (b: Buffer) => new Uint8Array(b);
  server.addService({
    Check: {
      path: "/envoy.service.auth.v3.Authorization/Check",
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: bytes,
      responseSerialize: raw,
      responseDeserialize: bytes,
    },
  }, {
    Check: (
      call: grpc.ServerUnaryCall<Uint8Array, Uint8Array>,
      cb: grpc.sendUnaryData<Uint8Array>,
    ) => {
      const s = decodeCheck(call.request);
      seen.push(s);
      if (!s.path.includes("/slow")) cb(null, checkResponse(s)); // `/slow`: never answered
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (err, p) => err ? reject(err) : resolve(p),
    )
  );
  return { port, seen, close: () => server.forceShutdown() };
}
