/**
 * What an attacker tries on 15008, frame by frame (hbone.md §5–§7): a real node's HBONE listener
 * with real mTLS, driven by a hand-written HTTP/2 client so malformed requests reach the server
 * exactly as sent (node:http2 refuses to send most of them).
 */
import assert from "node:assert/strict";
import * as tls from "node:tls";
import { closed, denyAll, dial, roundTrip, startMesh, workload } from "./_l4_test_kit.ts";
import * as net from "node:net";
import { l4Metrics } from "./l4_telemetry.ts";
import { dialHbone } from "./hbone_client.ts";
import { createTestCa, TestIdentityProvider } from "./test_identity.ts";
import { malformedConnect } from "./hbone_server.ts";
import { encodeHeaders, HpackDecoder } from "./h2/hpack.ts";
import {
  ErrorCode,
  Flag,
  frame,
  FrameReader,
  FrameType,
  headersFrames,
  parseSettings,
  pingFrame,
  PREFACE,
  readU32,
  Setting,
  settingsFrame,
} from "./h2/frames.ts";

const CLIENT = "spiffe://cluster.local/ns/default/sa/client";
/** openssl (installed by deno task setup) drives the ChaCha20 probes; they skip without it. */
const HAS_OPENSSL = hasOpenssl();

interface Got {
  type: number;
  flags: number;
  id: number;
  payload: Uint8Array;
}

/** A raw HTTP/2 client over mTLS: every frame the server sends is kept in `frames`. */
class Raw {
  readonly frames: Got[] = [];
  readonly closed: Promise<void>;
  private waiters: (() => void)[] = [];
  private decoder = new HpackDecoder(4096);
  data = new Uint8Array(0);

  constructor(readonly sock: tls.TLSSocket) {
    const reader = new FrameReader({
      frame: (type, flags, id, payload) => {
        this.frames.push({ type, flags, id, payload: payload.slice() });
        for (const w of this.waiters.splice(0)) w();
      },
      data: (_id, piece) => {
        const d = new Uint8Array(this.data.length + piece.length);
        d.set(this.data);
        d.set(piece, this.data.length);
        this.data = d;
        for (const w of this.waiters.splice(0)) w();
      },
    }, 1 << 24);
    sock.on("data", (c: Uint8Array) => reader.push(c));
    sock.on("error", () => {});
    this.closed = new Promise((r) => sock.once("close", () => r()));
    this.closed.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(
    ip: string,
    material: { certChainPem: string; keyPem: string; rootsPem: string },
  ): Promise<Raw> {
    const sock = tls.connect({
      host: ip,
      port: 15008,
      cert: material.certChainPem,
      key: material.keyPem,
      ca: material.rootsPem,
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    await new Promise<void>((resolve, reject) => {
      sock.once("secureConnect", () => resolve());
      sock.once("error", reject);
    });
    const raw = new Raw(sock);
    sock.write(PREFACE);
    sock.write(settingsFrame(new Map()));
    return raw;
  }

  send(b: Uint8Array): void {
    this.sock.write(b);
  }

  headers(id: number, list: [string, string][], endStream = false): void {
    this.send(headersFrames(id, encodeHeaders(list), endStream, 16384));
  }

  /** Waits (bounded) until `pred` holds over the frames seen so far, or the socket closed. */
  async until<T>(pred: () => T | undefined, ms = 3000): Promise<T | undefined> {
    const end = performance.now() + ms;
    for (;;) {
      const v = pred();
      if (v !== undefined) return v;
      if (this.sock.destroyed || performance.now() > end) return undefined;
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** The :status the server answered on `id`, "reset:<code>" or undefined (no answer). */
  answer(id: number): Promise<string | undefined> {
    return this.until(() => {
      const f = this.frames.find((f) =>
        f.id === id && (f.type === FrameType.HEADERS || f.type === FrameType.RST_STREAM)
      );
      if (!f) return undefined;
      if (f.type === FrameType.RST_STREAM) return `reset:${readU32(f.payload)}`;
      const list = this.decoder.decode(f.payload, 1 << 20);
      return list.find(([k]) => k === ":status")?.[1] +
        (list.find(([k]) => k === "baggage") ? `|${list.find(([k]) => k === "baggage")![1]}` : "");
    });
  }

  goaway(): Promise<number | undefined> {
    return this.until(() => {
      const f = this.frames.find((f) => f.type === FrameType.GOAWAY);
      return f ? readU32(f.payload, 4) : undefined;
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

Deno.test("malformedConnect: only :method and :authority, pseudo-headers first, no connection fields", () => {
  const ok: [string, string][] = [[":method", "CONNECT"], [":authority", "1.2.3.4:80"]];
  assert.equal(malformedConnect(ok), undefined);
  assert.equal(malformedConnect([...ok, ["baggage", "a=b"], ["te", "trailers"]]), undefined);
  for (
    const bad of [
      [...ok, [":path", "/"]],
      [...ok, [":scheme", "https"]],
      [...ok, [":protocol", "websocket"]],
      [...ok, [":status", "200"]],
      [...ok, [":foo", "x"]],
      [[":method", "CONNECT"], ["x", "1"], [":authority", "1.2.3.4:80"]],
      [...ok, [":authority", "5.6.7.8:80"]],
      [...ok, ["Baggage", "a=b"]],
      [...ok, ["connection", "close"]],
      [...ok, ["transfer-encoding", "chunked"]],
      [...ok, ["te", "gzip"]],
    ] as [string, string][][]
  ) assert.notEqual(malformedConnect(bad), undefined, JSON.stringify(bad));
});

Deno.test("HBONE 15008 probes: malformed CONNECTs get 400, data before the 200 is delivered, floods get GOAWAY", async () => {
  const m = await startMesh(51);
  const mat = await m.ids.material(CLIENT);
  const auth = `${m.serverIp}:${m.echo.port}`;
  const conns: Raw[] = [];
  const open = async (): Promise<Raw> => {
    const r = await Raw.open(m.serverIp, mat);
    conns.push(r);
    return r;
  };
  try {
    // Server SETTINGS: ztunnel's 200 streams and 64 KiB header list.
    const r = await open();
    const settings = await r.until(() =>
      r.frames.find((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK))
    );
    const s = parseSettings(settings!.payload);
    assert.equal(s.get(Setting.MAX_CONCURRENT_STREAMS), 200);
    assert.equal(s.get(Setting.MAX_HEADER_LIST_SIZE), 64 * 1024);

    // Extra or unknown pseudo-headers, repeated :authority, connection fields: 400, no tunnel.
    const bad: [string, string][][] = [
      [[":method", "CONNECT"], [":authority", auth], [":path", "/"]],
      [[":method", "CONNECT"], [":scheme", "https"], [":authority", auth]],
      [[":method", "CONNECT"], [":authority", auth], [":protocol", "websocket"]],
      [[":method", "CONNECT"], [":authority", auth], [":x", "1"]],
      [[":method", "CONNECT"], [":authority", auth], [":authority", auth]],
      [[":method", "CONNECT"], ["x-a", "1"], [":authority", auth]],
      [[":method", "CONNECT"], [":authority", auth], ["connection", "keep-alive"]],
      [[":method", "CONNECT"]],
      [[":method", "CONNECT"], [":authority", ""]],
      [[":method", "CONNECT"], [":authority", `${m.serverIp}:99999`]],
      [[":method", "POST"], [":scheme", "https"], [":path", "/"], [":authority", auth]],
    ];
    let id = 1;
    for (const list of bad) {
      r.headers(id, list);
      assert.equal(await r.answer(id), "400", JSON.stringify(list));
      id += 2;
    }
    // The session still serves: a valid CONNECT with data sent before the 200 reaches the
    // upstream (it is held, not dropped), and the 200 carries the destination's baggage.
    r.headers(id, [[":method", "CONNECT"], [":authority", auth]]);
    r.send(frame(FrameType.DATA, 0, id, new TextEncoder().encode("early")));
    const ok = await r.answer(id);
    assert.match(ok ?? "", /^200\|k8s\.namespace\.name=default,k8s\.deployment\.name=server/);
    const echoed = await r.until(() =>
      new TextDecoder().decode(r.data) === "early" ? true : undefined
    );
    assert.equal(echoed, true, `echo of early data: ${new TextDecoder().decode(r.data)}`);
    // Reusing a closed stream id: RST_STREAM(STREAM_CLOSED), nothing opened.
    r.headers(1, [[":method", "CONNECT"], [":authority", auth]]);
    assert.equal(await r.answer(1), "400"); // the first answer on id 1 is still the 400
    assert.ok(
      await r.until(() =>
        r.frames.find((f) =>
          f.id === 1 && f.type === FrameType.RST_STREAM &&
          readU32(f.payload) === ErrorCode.STREAM_CLOSED
        )
      ),
    );
    // Reusing the open tunnel's id for a second CONNECT: that stream is reset (PROTOCOL_ERROR).
    r.headers(id, [[":method", "CONNECT"], [":authority", auth]]);
    assert.equal(await r.answer(id), "200|" + ok!.split("|")[1]);
    assert.ok(
      await r.until(() =>
        r.frames.find((f) =>
          f.id === id && f.type === FrameType.RST_STREAM &&
          readU32(f.payload) === ErrorCode.PROTOCOL_ERROR
        )
      ),
    );
    // An even (server-initiated) id from a client is a connection error.
    r.headers(id - 1, [[":method", "CONNECT"], [":authority", auth]]);
    assert.equal(await r.goaway(), ErrorCode.PROTOCOL_ERROR);
    await r.closed;

    // CONTINUATION flood: one header block that never ends.
    const c = await open();
    c.send(frame(FrameType.HEADERS, 0, 1, encodeHeaders([[":method", "CONNECT"]])));
    for (let i = 0; i < 200 && !c.sock.destroyed; i++) {
      c.send(frame(FrameType.CONTINUATION, 0, 1, encodeHeaders([["x-pad", "y".repeat(16)]])));
    }
    assert.equal(await c.goaway(), ErrorCode.ENHANCE_YOUR_CALM);

    // A header block above the 64 KiB header list.
    const h = await open();
    h.headers(1, [[":method", "CONNECT"], [":authority", auth], ["x-big", "z".repeat(70_000)]]);
    assert.equal(await h.goaway(), ErrorCode.ENHANCE_YOUR_CALM);

    // PING and SETTINGS floods.
    const p = await open();
    for (let i = 0; i < 300; i++) p.send(pingFrame(new Uint8Array(8), false));
    assert.equal(await p.goaway(), ErrorCode.ENHANCE_YOUR_CALM);
    const st = await open();
    for (let i = 0; i < 300; i++) st.send(settingsFrame(new Map()));
    assert.equal(await st.goaway(), ErrorCode.ENHANCE_YOUR_CALM);

    // Window-update abuse: the connection window above 2^31-1.
    const w = await open();
    w.send(frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0x7fffffff)));
    assert.equal(await w.goaway(), ErrorCode.FLOW_CONTROL_ERROR);

    // After all of it a fresh client still gets its tunnel.
    const f = await open();
    f.headers(1, [[":method", "CONNECT"], [":authority", auth]]);
    assert.match((await f.answer(1)) ?? "", /^200/);

    // A service hostname authority (east-west gateway's outer tunnel): the service port maps to
    // this workload's target port; unknown services and ports are 503.
    f.headers(3, [[":method", "CONNECT"], [":authority", "echo.default.svc.cluster.local:80"]]);
    assert.match((await f.answer(3)) ?? "", /^200/);
    f.send(frame(FrameType.DATA, 0, 3, new TextEncoder().encode("by-name")));
    assert.ok(
      await f.until(() => new TextDecoder().decode(f.data) === "by-name" ? true : undefined),
      new TextDecoder().decode(f.data),
    );
    f.headers(5, [[":method", "CONNECT"], [":authority", "nope.default.svc.cluster.local:80"]]);
    assert.equal(await f.answer(5), "503");
    f.headers(7, [[":method", "CONNECT"], [":authority", "echo.default.svc.cluster.local:81"]]);
    assert.equal(await f.answer(7), "503");
  } finally {
    for (const c of conns) c.close();
    await Promise.all(conns.map((c) => c.closed));
    await m.close();
  }
});

Deno.test("HBONE 15008: removing a workload closes its sessions at once; the update does not wait", async () => {
  const m = await startMesh(52);
  const mat = await m.ids.material(CLIENT);
  const r = await Raw.open(m.serverIp, mat);
  // Also one connection still in its TLS handshake (it never sends a ClientHello).
  const { connect } = await import("node:net");
  const half = connect(15008, m.serverIp);
  half.on("error", () => {});
  try {
    await new Promise((res) => half.once("connect", res));
    const t0 = performance.now();
    await m.b.update(m.snapB({ version: "2", workloads: [] }));
    const ms = performance.now() - t0;
    assert.ok(ms < 2000, `update took ${ms.toFixed(0)} ms`);
    r.headers(1, [[":method", "CONNECT"], [":authority", `${m.serverIp}:${m.echo.port}`]]);
    const got = await r.answer(1);
    assert.ok(!got?.startsWith("200"), String(got));
    await r.closed;
  } finally {
    r.close();
    half.destroy();
    await r.closed;
    await m.close();
  }
});

Deno.test("istio_tcp_* carry canonical service/revision, app/version and cluster labels on both reporters", async () => {
  const m = await startMesh(54);
  try {
    const s = await dial(m.vip, 80, m.clientIp);
    const got = await roundTrip(s, new TextEncoder().encode("hi"));
    assert.equal(new TextDecoder().decode(got), "hi");
    const common = {
      source_workload: "client",
      source_canonical_service: "client",
      source_canonical_revision: "latest",
      source_app: "client",
      source_version: "latest",
      source_cluster: "unknown",
      destination_workload: "server",
      destination_canonical_service: "server",
      destination_canonical_revision: "latest",
      destination_app: "server",
      destination_version: "latest",
      destination_cluster: "unknown",
      connection_security_policy: "mutual_tls",
    };
    // Node B learns the source from the CONNECT's baggage (the client is not in its snapshot).
    assert.ok(l4Metrics.opened.sum({ ...common, reporter: "destination" }) >= 1);
    // Node A knows both ends from its snapshot (the endpoint has no labels: its name).
    const { connection_security_policy: _, ...outbound } = common;
    assert.ok(l4Metrics.opened.sum({ ...outbound, reporter: "source" }) >= 1);
  } finally {
    await m.close();
  }
});

Deno.test("HBONE TLS: TLS 1.3 AES-GCM suites only (no ChaCha20), no TLS 1.2, ALPN h2 only", async () => {
  const m = await startMesh(56);
  const mat = await m.ids.material(CLIENT);
  const hello = (extra: tls.ConnectionOptions): Promise<string> =>
    new Promise((resolve) => {
      const s = tls.connect({
        host: m.serverIp,
        port: 15008,
        cert: mat.certChainPem,
        key: mat.keyPem,
        ca: mat.rootsPem,
        ALPNProtocols: ["h2"],
        checkServerIdentity: () => undefined,
        ...extra,
      }, () => {
        resolve(`${s.getProtocol()} ${s.getCipher().standardName ?? s.getCipher().name}`);
        s.destroy();
      });
      s.on("error", () => resolve("refused"));
    });
  try {
    assert.equal(await hello({}), "TLSv1.3 TLS_AES_256_GCM_SHA384");
    assert.equal(await hello({ maxVersion: "TLSv1.2" }), "refused");
    // node:tls cannot offer TLS 1.3 suites selectively (Deno and Bun ignore `ciphers`): openssl.
    const refusedBefore = l4Metrics.refused.get({
      direction: "inbound",
      reason: "tls_handshake_failed",
    });
    const sclient = async (suite: string): Promise<string> => {
      const out = await new Deno.Command("openssl", {
        args: [
          "s_client",
          "-connect",
          `${m.serverIp}:15008`,
          "-cert",
          files.cert,
          "-key",
          files.key,
          "-CAfile",
          files.ca,
          "-alpn",
          "h2",
          "-ciphersuites",
          suite,
          "-brief",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    };
    const dir = Deno.makeTempDirSync();
    const files = { cert: `${dir}/c.pem`, key: `${dir}/k.pem`, ca: `${dir}/ca.pem` };
    Deno.writeTextFileSync(files.cert, mat.certChainPem);
    Deno.writeTextFileSync(files.key, mat.keyPem);
    Deno.writeTextFileSync(files.ca, mat.rootsPem);
    try {
      // Skipped without openssl (deno task setup installs it).
      if (HAS_OPENSSL) {
        assert.match(await sclient("TLS_AES_128_GCM_SHA256"), /TLS_AES_128_GCM_SHA256/);
        assert.equal(
          l4Metrics.refused.get({ direction: "inbound", reason: "tls_handshake_failed" }),
          refusedBefore,
        );
        await sclient("TLS_CHACHA20_POLY1305_SHA256");
        assert.equal(
          l4Metrics.refused.get({ direction: "inbound", reason: "tls_handshake_failed" }),
          refusedBefore + 1,
        );
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
    assert.equal(await hello({ ALPNProtocols: ["http/1.1"] }), "refused");
  } finally {
    await m.close();
  }
});

Deno.test({
  name: "HBONE client refuses a server that picks ChaCha20 (openssl s_server; skipped without it)",
  ignore: !HAS_OPENSSL,
}, async (t) => {
  const ids = new TestIdentityProvider(await createTestCa());
  const server = "spiffe://cluster.local/ns/default/sa/server";
  const mat = await ids.material(server);
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/c.pem`, mat.certChainPem);
  Deno.writeTextFileSync(`${dir}/k.pem`, mat.keyPem);
  Deno.writeTextFileSync(`${dir}/ca.pem`, mat.rootsPem);
  const ip = "127.77.59.3";
  const port = 20000 + Math.floor(Math.random() * 20000);
  const dial = async (suite: string): Promise<string> => {
    const child = new Deno.Command("openssl", {
      args: [
        "s_server",
        "-accept",
        `${ip}:${port}`,
        "-cert",
        `${dir}/c.pem`,
        "-key",
        `${dir}/k.pem`,
        "-CAfile",
        `${dir}/ca.pem`,
        "-Verify",
        "1",
        "-alpn",
        "h2",
        "-ciphersuites",
        suite,
        "-quiet",
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      let last = "not started";
      for (let i = 0; i < 50; i++) {
        try {
          const s = await dialHbone(ids, {
            srcIdentity: CLIENT,
            srcIp: undefined,
            dstIdentity: server,
            hboneAddr: `${ip}:${port}`,
          }, 2000);
          s.destroy();
          await s.closed;
          return "ok";
        } catch (e) {
          last = (e as Error).message;
          if (!/ECONNREFUSED|refused/i.test(last) || /cipher/.test(last)) return last;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      return last;
    } finally {
      child.kill();
      await child.status;
      await child.stdin.close().catch(() => {});
    }
  };
  try {
    await t.step("AES-128-GCM: accepted", async () => {
      assert.equal(await dial("TLS_AES_128_GCM_SHA256"), "ok");
    });
    await t.step("ChaCha20: refused", async () => {
      assert.match(await dial("TLS_CHACHA20_POLY1305_SHA256"), /cipher suite TLS_CHACHA20/);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "TCP keepalive (180 s idle) on every socket of a tunnel: capture, HBONE both ends, upstream",
  ignore: !hasCommand("ss"), // iproute2, installed by deno task setup
}, async () => {
  const m = await startMesh(60);
  try {
    const s = await dial(m.vip, 80, m.clientIp);
    s.write("x");
    await new Promise((r) => s.once("data", r));
    const echo = new RegExp(`:${m.echo.port}$`);
    const any = /./;
    const want: [string, RegExp, RegExp][] = [
      ["capture side", /^127\.77\.60\.100:80$/, any],
      ["HBONE client", any, /^127\.77\.60\.3:15008$/],
      ["HBONE server", /^127\.77\.60\.3:15008$/, any],
      ["upstream", any, echo],
    ];
    // ss shows one timer per socket; a retransmit timer may hide keepalive for a moment: poll.
    const seen = new Set<string>();
    let lines: string[] = [];
    for (let i = 0; i < 30 && seen.size < want.length; i++) {
      const out = await new Deno.Command("ss", { args: ["-tnoH", "state", "established"] })
        .output();
      lines = new TextDecoder().decode(out.stdout).split("\n").filter((l) =>
        l.includes("127.77.60.")
      );
      for (const [name, local, peer] of want) {
        if (
          lines.some((l) => {
            const [, , a, b] = l.trim().split(/\s+/);
            return local.test(a ?? "") && peer.test(b ?? "") && /timer:\(keepalive,/.test(l);
          })
        ) seen.add(name);
      }
      if (seen.size < want.length) await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual([...seen].sort(), want.map(([n]) => n).sort(), lines.join("\n"));
    s.destroy();
  } finally {
    await m.close();
  }
});

Deno.test("denied and unreachable connections are opened then closed with DENY / CONNECT flags", async () => {
  const m = await startMesh(61);
  const mat = await m.ids.material(CLIENT);
  const closedWith = (reporter: string, flag: string): number =>
    l4Metrics.closed.sum({ reporter, response_flags: flag, destination_workload: "server" });
  const openedAt = (reporter: string): number =>
    l4Metrics.opened.sum({ reporter, destination_workload: "server" });
  try {
    // Upstream connect failure (nothing on port 1): 503 and CONNECT.
    const [o0, c0] = [openedAt("destination"), closedWith("destination", "CONNECT")];
    const r = await Raw.open(m.serverIp, mat);
    r.headers(1, [[":method", "CONNECT"], [":authority", `${m.serverIp}:1`]]);
    assert.equal(await r.answer(1), "503");
    r.close();
    await r.closed;
    assert.equal(openedAt("destination") - o0, 1);
    assert.equal(closedWith("destination", "CONNECT") - c0, 1);
    // Authorization deny: 401 on B, DENY on both reporters.
    await m.b.update(m.snapB({ version: "2", policies: [denyAll()] }));
    const [d0, s0, o1] = [
      closedWith("destination", "DENY"),
      closedWith("source", "DENY"),
      openedAt("destination"),
    ];
    const s = await dial(m.vip, 80, m.clientIp);
    s.write("x");
    await closed(s);
    assert.equal(closedWith("destination", "DENY") - d0, 1);
    assert.equal(openedAt("destination") - o1, 1);
    assert.equal(closedWith("source", "DENY") - s0, 1);
  } finally {
    await m.close();
  }
});

Deno.test("application tunnel PROXY: v2 header (source → tunnel target, TLV 0xD0 identity) before the payload, on the tunnel port", async () => {
  const m = await startMesh(62);
  const mat = await m.ids.material(CLIENT);
  const got: Uint8Array[] = [];
  let gotAll!: () => void;
  const all = new Promise<void>((r) => gotAll = r);
  const pp = net.createServer((c) => {
    c.on("data", (d: Uint8Array) => {
      got.push(d);
      if (Buffer.concat(got).includes(Buffer.from("payload"))) gotAll();
    });
    c.on("error", () => {});
  });
  await new Promise<void>((r) => pp.listen(0, m.serverIp, r));
  const ppPort = (pp.address() as net.AddressInfo).port;
  const r = await Raw.open(m.serverIp, mat);
  try {
    await m.b.update(m.snapB({
      version: "2",
      workloads: [{
        ...workload("server", m.serverIp, [m.echo.port]),
        applicationTunnel: { protocol: "PROXY", port: ppPort },
      }],
    }));
    r.headers(1, [[":method", "CONNECT"], [":authority", `${m.serverIp}:${m.echo.port}`]]);
    assert.match((await r.answer(1)) ?? "", /^200/);
    r.send(frame(FrameType.DATA, 0, 1, new TextEncoder().encode("payload")));
    await all;
    const b = Buffer.concat(got);
    assert.deepEqual([...b.subarray(0, 12)], [13, 10, 13, 10, 0, 13, 10, 81, 85, 73, 84, 10]);
    assert.equal(b[12], 0x21); // v2, PROXY
    assert.equal(b[13], 0x11); // TCP over IPv4
    const len = b.readUInt16BE(14);
    const src = [...b.subarray(16, 20)].join(".");
    const dst = [...b.subarray(20, 24)].join(".");
    assert.equal(src, r.sock.localAddress!.replace(/^::ffff:/, ""));
    assert.equal(dst, m.serverIp);
    assert.equal(b.readUInt16BE(24), r.sock.localPort);
    assert.equal(b.readUInt16BE(26), m.echo.port);
    assert.equal(b[28], 0xd0);
    const idLen = b.readUInt16BE(29);
    assert.equal(b.subarray(31, 31 + idLen).toString(), CLIENT);
    assert.equal(len, 12 + 3 + idLen);
    assert.equal(b.subarray(16 + len).toString(), "payload");
  } finally {
    r.close();
    await r.closed;
    await m.close();
    await new Promise((res) => pp.close(res));
  }
});

Deno.test("listeners bind with SO_REUSEPORT: a second listener (an upgraded process's) binds 15008 and the capture port meanwhile", async () => {
  const m = await startMesh(63, {}, {});
  const bind = (host: string, port: number): Promise<string> =>
    new Promise((resolve) => {
      const s = net.createServer();
      s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
      s.listen({ port, host, reusePort: true }, () => s.close(() => resolve("bound")));
    });
  try {
    assert.equal(await bind(m.serverIp, 15008), "bound");
    assert.equal(await bind(m.vip, 80), "bound");
  } finally {
    await m.close();
  }
});

function hasCommand(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

function hasOpenssl(): boolean {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}
