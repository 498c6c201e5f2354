/**
 * The live fuzzer's targets: for each listener of the node under attack, where to connect and
 * how to make one input. `check` is an oracle on weft's answer beyond "still alive" (the admin
 * guard must refuse a foreign state-changing request).
 */
import { encodeFrames, type Frame, h2cSeeds, h2Input, hboneSeeds } from "./h2_gen.ts";
import { adminInput, http1Input } from "./http1_gen.ts";
import { mutate } from "../../tools/fuzz/engine.ts";
import { PREFACE } from "../../src/core/h2/frames.ts";
import { encodeHeaders } from "../../src/core/h2/hpack.ts";
import type { Transport } from "./wire.ts";
import { type FuzzNode, WEB_PORT } from "./node.ts";

type Rand = () => number;

export interface Input {
  readonly transport: Transport;
  /** Written in order (a SOCKS5 greeting, then its request, then the payload). */
  readonly pieces: Uint8Array[];
  /** A problem with weft's first answer bytes, or undefined. */
  check?(head: string): string | undefined;
}

export interface LiveTarget {
  readonly name: string;
  next(rand: Rand): Input;
}

const int = (rand: Rand, n: number) => Math.floor(rand() * n);
const pick = <T>(rand: Rand, a: readonly T[]): T => a[int(rand, a.length)]!;
const enc = (s: string) => new TextEncoder().encode(s);

export function liveTargets(n: FuzzNode): Map<string, LiveTarget> {
  const viaVip = (vip: string): Transport => ({
    kind: "tcp",
    host: vip,
    port: 80,
    localAddress: n.clientIp,
  });
  const hbone: Transport = {
    kind: "tls",
    host: n.webIp,
    port: 15008,
    cert: n.client.certPem,
    key: n.client.keyPem,
    ca: n.pki.rootsPem,
  };
  const hSeeds = hboneSeeds(n.webIp, WEB_PORT);
  const cSeeds = h2cSeeds("grpc");
  const targets: LiveTarget[] = [
    {
      name: "hbone",
      next: (rand) => {
        // A third: one well-formed CONNECT carrying a mutated HTTP/1.1 request (the inbound L7
        // chain); the rest: mutated frame scripts.
        if (rand() < 0.33) {
          const f: Frame[] = [
            { type: 4, flags: 0, id: 0, payload: new Uint8Array(0) },
            {
              type: 1,
              flags: 4,
              id: 1,
              payload: encodeHeaders([[":method", "CONNECT"], [
                ":authority",
                `${n.webIp}:${WEB_PORT}`,
              ]]),
            },
            {
              type: 0,
              flags: rand() < 0.5 ? 1 : 0,
              id: 1,
              payload: http1Input(rand).subarray(0, 16384),
            },
          ];
          return { transport: hbone, pieces: [PREFACE, encodeFrames(f)] };
        }
        return { transport: hbone, pieces: [h2Input(hSeeds, rand)] };
      },
    },
    {
      name: "http1",
      next: (rand) => ({ transport: viaVip(n.webVip), pieces: [http1Input(rand)] }),
    },
    {
      name: "h2c",
      next: (rand) => ({
        transport: viaVip(n.grpcVip),
        pieces: [rand() < 0.1 ? http1Input(rand) : h2Input(cSeeds, rand)],
      }),
    },
    {
      name: "plain",
      next: (rand) => {
        const pp = pick(rand, [
          enc("PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n"),
          enc("PROXY UNKNOWN\r\n"),
          enc(`PROXY TCP6 ::1 ::1 65536 0\r\n${"x".repeat(200)}`),
          Uint8Array.of(
            0x0d,
            0x0a,
            0x0d,
            0x0a,
            0x00,
            0x0d,
            0x0a,
            0x51,
            0x55,
            0x49,
            0x54,
            0x0a,
            0x21,
            0x11,
            0xff,
            0xff,
          ),
          new Uint8Array(0),
        ]);
        return {
          transport: { kind: "tcp", host: n.grpcIp, port: 15006, localAddress: n.clientIp },
          pieces: [
            mutate(pp, rand, [], [], 4096),
            rand() < 0.5 ? http1Input(rand) : h2Input(cSeeds, rand),
          ],
        };
      },
    },
    {
      name: "socks5",
      next: (rand) => {
        const [h, p] = n.socks5.split(":") as [string, string];
        const ip4 = (s: string) => s.split(".").map(Number);
        const dests = [
          Uint8Array.of(1, ...ip4(n.webVip), 0, 80),
          Uint8Array.of(3, 29, ...enc("web.default.svc.cluster.local"), 0, 80),
          Uint8Array.of(1, 127, 0, 0, 1, 0x3a, 0x98), // weft's own admin port: loop protection
          Uint8Array.of(4, ...new Array(15).fill(0), 1, 0, 80),
          Uint8Array.of(3, 0),
          Uint8Array.of(3, 255, ...new Uint8Array(255).fill(0x41), 0, 80),
        ];
        const greeting = mutate(Uint8Array.of(5, 1, 0), rand, [], [], 300);
        const request = Uint8Array.of(5, pick(rand, [1, 1, 1, 2, 3]), 0, ...pick(rand, dests));
        const req = rand() < 0.5
          ? mutate(request, rand, [], [Uint8Array.of(5), Uint8Array.of(0xff)], 600)
          : request;
        return {
          transport: { kind: "tcp", host: h, port: Number(p) },
          pieces: [rand() < 0.6 ? Uint8Array.of(5, 1, 0) : greeting, req, http1Input(rand)],
        };
      },
    },
    {
      name: "admin",
      next: (rand) => {
        const r = n.proc.ready;
        const addr = pick(rand, [r.admin, r.admin, r.metrics, r.readiness]);
        const [host, port] = addr.split(":") as [string, string];
        const a = adminInput(rand, addr);
        return {
          transport: { kind: "tcp", host, port: Number(port) },
          pieces: [a.bytes],
          check: (head) => {
            if (!a.checkable || !a.foreign || addr !== r.admin) return undefined;
            return /^HTTP\/1\.[01] 2\d\d/.test(head)
              ? `admin answered a foreign state-changing request: ${head.split("\r\n")[0]}`
              : undefined;
          },
        };
      },
    },
  ];
  return new Map(targets.map((t) => [t.name, t]));
}
