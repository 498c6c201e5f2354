/**
 * Route timeout and retries on HTTP/2 end to end, runnable on Deno and Bun: a node:http2 h2c
 * upstream that is slow, fails or refuses on purpose (per `x-key` try counts, the RST_STREAM
 * codes it saw), weft's HttpProxy (upstreamProtocol "h2") in front of it with a route policy the
 * check sets, and an h2c node:http2 client. `CHECKS` hold the scenarios; run as a script
 * (`bun tests/support/h2_policy_rig.ts`) it runs them all and prints `{"ok": [names]}`.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { ErrorCode, frame, FrameType, goawayFrame, PREFACE } from "../../src/core/h2/frames.ts";
import http2 from "node:http2";
import net from "node:net";
import process from "node:process";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { FilterChain, HttpProxy, metrics, type RoutePolicy } from "../../src/core/mod.ts";
import { TEST_PEER } from "./filter_context.ts";
import { closeSession, h2Call } from "./h2c_client.ts";

export interface PolicyRig {
  readonly url: string;
  /** Tries seen per `x-key`. */
  readonly tries: Map<string, number>;
  /** RST_STREAM codes of upstream streams the proxy reset (8 = CANCEL). */
  readonly resets: number[];
  policy: RoutePolicy | undefined;
  /** The next upstream connection goes to a raw HTTP/2 server that answers the first request
   * with GOAWAY(last_stream_id 0): the stream is refused (RFC 9113 §6.8). */
  refuseNextDial: boolean;
  close(): Promise<void>;
}

/** A raw HTTP/2 server: SETTINGS, then GOAWAY(0, NO_ERROR) on the first HEADERS frame. */
async function startRefuser(): Promise<{ port: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    socks.add(sock);
    sock.on("close", () => socks.delete(sock));
    sock.on("error", () => {});
    sock.write(frame(FrameType.SETTINGS, 0, 0));
    let buf = Buffer.alloc(0);
    let at = PREFACE.length;
    sock.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= at + 9) {
        const len = buf.readUIntBE(at, 3);
        if (buf[at + 3] === FrameType.HEADERS) {
          sock.write(goawayFrame(0, ErrorCode.NO_ERROR));
          return;
        }
        at += 9 + len;
      }
    });
  });
  const port = await listen(server);
  return {
    port,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Upstream: waits `x-delay` ms before the head (`x-body-delay`: before the body); fails the
 * first `x-fail` tries of its `x-key` with `x-status` (a number; `grpc-14`: a trailers-only gRPC
 * reply with that grpc-status; `refuse`: GOAWAY with last_stream_id below the stream), then
 * answers 200 with the try number. */
export async function startPolicyRig(): Promise<PolicyRig> {
  const tries = new Map<string, number>();
  const resets: number[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  const upstream = http2.createServer();
  upstream.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  upstream.on("stream", (s, headers) => {
    const stream = s as http2.ServerHttp2Stream;
    const timers: ReturnType<typeof setTimeout>[] = [];
    stream.on("close", () => {
      for (const t of timers) clearTimeout(t);
      if (stream.rstCode && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
        resets.push(stream.rstCode);
      }
    });
    stream.on("error", () => {});
    let got = 0;
    stream.on("data", (c: Uint8Array) => (got += c.length));
    stream.on("end", () => {
      const key = String(headers["x-key"] ?? headers[":path"]);
      const n = (tries.get(key) ?? 0) + 1;
      tries.set(key, n);
      if (n <= Number(headers["x-fail"] ?? 0)) {
        const how = String(headers["x-status"] ?? "503");
        if (how === "stall") return; // never answers (a per-try timeout)
        if (how === "refuse") {
          // last_stream_id below this stream: the client must treat it as refused.
          return stream.session?.goaway(
            http2.constants.NGHTTP2_NO_ERROR,
            Math.max(0, (stream.id ?? 1) - 2),
          );
        }
        if (how.startsWith("grpc-")) {
          return stream.respond({
            ":status": 200,
            "content-type": "application/grpc",
            "grpc-status": how.slice(5),
            "grpc-message": `failed try ${n}`,
          }, { endStream: true });
        }
        stream.respond({ ":status": Number(how) });
        return void stream.end(`failed try ${n}`);
      }
      const grpc = String(headers["content-type"] ?? "").startsWith("application/grpc");
      const head = () => {
        stream.respond(
          {
            ":status": 200,
            "content-type": grpc ? "application/grpc" : "text/plain",
            "x-got": String(got),
          },
          grpc ? { waitForTrailers: true } : {},
        );
        if (grpc) stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        const body = (): void => void stream.end(`try ${n}`);
        const bodyDelay = Number(headers["x-body-delay"] ?? 0);
        if (bodyDelay) {
          stream.write("started ");
          timers.push(setTimeout(body, bodyDelay));
        } else body();
      };
      const delay = Number(headers["x-delay"] ?? 0);
      if (delay) timers.push(setTimeout(head, delay));
      else head();
    });
  });
  const upPort = await listen(upstream);
  const refuser = await startRefuser();
  const rig: PolicyRig = {
    url: "",
    tries,
    resets,
    policy: undefined,
    refuseNextDial: false,
    close: async () => {},
  };
  const chain = new FilterChain([]);
  const proxy = new HttpProxy({
    chain: () => chain,
    direction: "outbound",
    upstreamProtocol: "h2",
    routePolicy: () => rig.policy,
    dialUpstream: () =>
      new Promise<Duplex>((ok, fail) => {
        const refuse = rig.refuseNextDial;
        rig.refuseNextDial = false;
        const s = net.connect(refuse ? refuser.port : upPort, "127.0.0.1");
        s.once("connect", () => ok(s));
        s.once("error", fail);
      }),
  });
  const sockets = new Set<net.Socket>();
  const front = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    proxy.handle(s, TEST_PEER).catch(() => s.destroy());
  });
  const port = await listen(front);
  return Object.assign(rig, {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      proxy.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => front.close(r));
      for (const s of sessions) s.destroy();
      await new Promise((r) => upstream.close(r));
      await refuser.close();
    },
  });
}

function listen(server: net.Server | http2.Http2Server): Promise<number> {
  return new Promise((r) =>
    server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port))
  );
}

/** A counter's value from the process's registry (0 when absent). */
export function counter(name: string, labels: string): number {
  const line = metrics.render().split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

const TIMEOUTS = "weft_http_upstream_timeouts_total";
const until = async (ok: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
};

/** A GET whose end is awaited by 'close', with the RST_STREAM code it ended with (0: none). */
function cutCall(
  s: http2.ClientHttp2Session,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; rstCode: number }> {
  return new Promise((resolve) => {
    const req = s.request({ ":path": path, ...headers }, { endStream: true });
    let status = 0;
    let body = "";
    req.on("response", (h) => (status = Number(h[":status"])));
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("error", () => {});
    req.on("close", () => resolve({ status, body, rstCode: req.rstCode ?? 0 }));
  });
}

type Check = (rig: PolicyRig, s: http2.ClientHttp2Session) => Promise<void>;

export const CHECKS: Record<string, Check> = {
  "route timeout: 504 within the timeout, the upstream stream reset, the session usable": async (
    rig,
    s,
  ) => {
    rig.policy = { match: [], timeoutMs: 300, retries: undefined };
    const before = counter(TIMEOUTS, 'kind="route"');
    const t0 = performance.now();
    const r = await h2Call(s, "/slow", { method: "GET", headers: { "x-delay": "3000" } });
    const took = performance.now() - t0;
    assert.equal(r.status, 504);
    assert.equal(r.body, "upstream request timeout");
    assert.ok(took >= 280 && took < 1500, `answered after ${took.toFixed(0)} ms`);
    await until(() => rig.resets.length > 0);
    assert.deepEqual(rig.resets, [http2.constants.NGHTTP2_CANCEL], "upstream stream cancelled");
    assert.equal(counter(TIMEOUTS, 'kind="route"'), before + 1);
    // The same downstream session and the same upstream session serve the next requests.
    const fast = await h2Call(s, "/fast", { method: "GET", headers: { "x-delay": "50" } });
    assert.equal(fast.status, 200);
    const body = await h2Call(s, "/post", { body: ["abc"], headers: { "x-delay": "20" } });
    assert.equal(body.status, 200);
    assert.equal(body.body, "try 1");
  },
  "route timeout: after the response head, both streams are reset": async (rig, s) => {
    rig.policy = { match: [], timeoutMs: 300, retries: undefined };
    const t0 = performance.now();
    const r = await cutCall(s, "/slow-body", { "x-body-delay": "3000" });
    const took = performance.now() - t0;
    assert.equal(r.status, 200);
    assert.equal(r.body, "started ", "the body stops where the upstream was");
    assert.equal(r.rstCode, http2.constants.NGHTTP2_CANCEL, "downstream stream reset");
    assert.ok(took >= 280 && took < 1500, `reset after ${took.toFixed(0)} ms`);
    await until(() => rig.resets.length > 0);
    assert.deepEqual(rig.resets, [http2.constants.NGHTTP2_CANCEL]);
    assert.equal((await h2Call(s, "/after", { method: "GET" })).status, 200);
  },
  "route timeout: it starts when the request is complete, not before": async (rig, s) => {
    rig.policy = { match: [], timeoutMs: 300, retries: undefined };
    // The body takes 500 ms to arrive; the answer comes 100 ms after its end: within the timeout.
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = s.request({ ":path": "/trickle", ":method": "POST", "x-delay": "100" });
      let status = 0;
      let body = "";
      req.on("response", (h) => (status = Number(h[":status"])));
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("end", () => resolve({ status, body }));
      req.on("error", reject);
      req.write("first ");
      setTimeout(() => req.end("last"), 500);
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, "try 1");
    assert.deepEqual(rig.resets, []);
  },
  "route timeout: a gRPC response within it passes with its trailers": async (rig, s) => {
    rig.policy = { match: [], timeoutMs: 1000, retries: undefined };
    const r = await h2Call(s, "/pkg.Svc/M", {
      headers: { "content-type": "application/grpc", "x-delay": "50" },
      body: ["\0\0\0\0\0"],
    });
    assert.equal(r.status, 200);
    assert.equal(r.trailers["grpc-status"], "0");
    assert.deepEqual(rig.resets, []);
  },
};

const RETRIES = "weft_http_upstream_retries_total";

Object.assign(
  CHECKS,
  {
    "retries: 503 once then 200 is 200 with retries, 503 without": async (rig, s) => {
      const hdr = { "x-fail": "1", "x-status": "503" };
      rig.policy = { match: [], timeoutMs: undefined, retries: undefined };
      const once = await h2Call(s, "/no-retry", { method: "GET", headers: hdr });
      assert.equal(once.status, 503);
      assert.equal(rig.tries.get("/no-retry"), 1);
      rig.policy = {
        match: [],
        timeoutMs: 2000,
        retries: { attempts: 2, perTryTimeoutMs: undefined, retryOn: ["5xx"] },
      };
      const before = counter(RETRIES, 'reason="503"');
      // A body in two DATA frames without a content-length: held whole and sent again.
      const r = await h2Call(s, "/retry", { headers: hdr, body: ["hello ", "world"] });
      assert.equal(r.status, 200);
      assert.equal(r.body, "try 2");
      assert.equal(r.headers["x-got"], "11", "the body replayed whole");
      assert.equal(rig.tries.get("/retry"), 2);
      assert.equal(counter(RETRIES, 'reason="503"'), before + 1);
      // Not named by retryOn: answered as is.
      rig.policy = {
        match: [],
        timeoutMs: undefined,
        retries: { attempts: 2, perTryTimeoutMs: undefined, retryOn: ["gateway-error"] },
      };
      const notNamed = await h2Call(s, "/no-match", {
        method: "GET",
        headers: { "x-fail": "1", "x-status": "500" },
      });
      assert.equal(notNamed.status, 500);
    },
    "retries: a body over the replay limit goes once, whole": async (rig, s) => {
      rig.policy = {
        match: [],
        timeoutMs: 5000,
        retries: { attempts: 2, perTryTimeoutMs: undefined, retryOn: ["5xx"] },
      };
      // Pieces of 64 KiB, 1 MiB + 192 KiB in all: over the 1 MiB replay limit.
      const piece = "x".repeat(64 * 1024);
      const body = Array.from({ length: 19 }, () => piece);
      const ok = await h2Call(s, "/big", { body });
      assert.equal(ok.status, 200);
      assert.equal(
        ok.headers["x-got"],
        String(19 * 64 * 1024),
        "what was read first, then the rest",
      );
      const failed = await h2Call(s, "/big-fail", {
        body,
        headers: { "x-fail": "1", "x-status": "503" },
      });
      assert.equal(failed.status, 503, "not retried: the body cannot be sent again");
      assert.equal(rig.tries.get("/big-fail"), 1);
    },
    "retries: a trailers-only grpc-status 14 is retried on unavailable": async (rig, s) => {
      rig.policy = {
        match: [],
        timeoutMs: undefined,
        retries: { attempts: 2, perTryTimeoutMs: undefined, retryOn: ["unavailable"] },
      };
      const before = counter(RETRIES, 'reason="unavailable"');
      const grpc = { "content-type": "application/grpc", "x-fail": "1", "x-status": "grpc-14" };
      const r = await h2Call(s, "/pkg.Svc/Get", { headers: grpc, body: ["\0\0\0\0\x02hi"] });
      assert.equal(r.status, 200);
      assert.equal(r.trailers["grpc-status"], "0");
      assert.equal(r.body, "try 2");
      assert.equal(r.headers["x-got"], "7");
      assert.equal(counter(RETRIES, 'reason="unavailable"'), before + 1);
      // grpc-status 13 is not `unavailable`: the trailers-only answer passes.
      const other = await h2Call(s, "/pkg.Svc/Other", {
        headers: { ...grpc, "x-status": "grpc-13" },
        body: ["\0\0\0\0\0"],
      });
      assert.equal(other.headers["grpc-status"], "13");
      assert.equal(rig.tries.get("/pkg.Svc/Other"), 1);
    },
    "retries: a refused stream (RST_STREAM, or a GOAWAY below it) is retried on refused-stream":
      async (rig, s) => {
        rig.policy = {
          match: [],
          timeoutMs: undefined,
          retries: { attempts: 1, perTryTimeoutMs: undefined, retryOn: ["refused-stream"] },
        };
        const before = counter(RETRIES, 'reason="refused-stream"');
        rig.refuseNextDial = true;
        const r = await h2Call(s, "/goaway", { method: "GET" });
        assert.equal(r.status, 200);
        assert.equal(r.body, "try 1", "the next session served it");
        const rst = await h2Call(s, "/rst", {
          method: "GET",
          headers: { "x-fail": "1", "x-status": "refuse" },
        });
        assert.equal(rst.status, 200);
        assert.equal(rst.body, "try 2");
        assert.equal(counter(RETRIES, 'reason="refused-stream"'), before + 2);
        // Without the condition: 503 upstream reset.
        rig.policy = {
          match: [],
          timeoutMs: undefined,
          retries: { attempts: 1, perTryTimeoutMs: undefined, retryOn: ["connect-failure"] },
        };
        const no = await h2Call(s, "/rst2", {
          method: "GET",
          headers: { "x-fail": "1", "x-status": "refuse" },
        });
        assert.equal(no.status, 503);
      },
    "retries: a per-try timeout, then the route timeout bounds every try": async (rig, s) => {
      rig.policy = {
        match: [],
        timeoutMs: 2000,
        retries: { attempts: 2, perTryTimeoutMs: 200, retryOn: ["reset"] },
      };
      const before = counter(TIMEOUTS, 'kind="per_try"');
      const r = await h2Call(s, "/stall", {
        method: "GET",
        headers: { "x-fail": "1", "x-status": "stall" },
      });
      assert.equal(r.status, 200);
      assert.equal(r.body, "try 2");
      assert.equal(counter(TIMEOUTS, 'kind="per_try"'), before + 1);
      rig.policy = {
        match: [],
        timeoutMs: 500,
        retries: { attempts: 5, perTryTimeoutMs: 200, retryOn: ["reset"] },
      };
      const t0 = performance.now();
      const out = await h2Call(s, "/stall-all", {
        method: "GET",
        headers: { "x-fail": "9", "x-status": "stall" },
      });
      const took = performance.now() - t0;
      assert.equal(out.status, 504);
      assert.ok(took >= 380 && took < 1500, `504 after ${took.toFixed(0)} ms`);
      assert.equal((await h2Call(s, "/ok", { method: "GET" })).status, 200);
    },
  } satisfies Record<string, Check>,
);

/** Runs `check` against a fresh rig and client session. */
export async function runCheck(check: Check): Promise<void> {
  const rig = await startPolicyRig();
  const s = http2.connect(rig.url);
  s.on("error", () => {});
  try {
    await check(rig, s);
  } finally {
    await closeSession(s);
    await rig.close();
  }
}

// deno-lint-ignore no-explicit-any
if ((import.meta as any).main) {
  const ok: string[] = [];
  for (const [name, check] of Object.entries(CHECKS)) {
    await runCheck(check);
    ok.push(name);
  }
  process.stdout.write(`${JSON.stringify({ ok })}\n`);
  process.exit(0);
}
