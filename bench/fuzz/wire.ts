/**
 * How the live fuzzer delivers one input to a listener: over TCP or mTLS, in one write, split at
 * random points, or dripped slowly; then it waits for weft's answer, half-closes, resets (RST) or
 * just drops the connection. The outcome says whether weft closed the connection first.
 */
import net from "node:net";
import tls from "node:tls";

export type Transport =
  | { kind: "tcp"; host: string; port: number; localAddress?: string }
  | {
    kind: "tls";
    host: string;
    port: number;
    cert: string;
    key: string;
    ca: string;
    alpn?: string[];
  };

export type Ending = "wait" | "half" | "rst" | "drop";
export type Pacing = "whole" | "split" | "drip";

export interface Delivery {
  readonly pacing: Pacing;
  readonly ending: Ending;
  /** How long to wait for weft's answer (and close) after the last byte. */
  readonly waitMs: number;
}

export interface Outcome {
  readonly connected: boolean;
  /** weft ended or reset the connection before the driver did. */
  readonly closedByPeer: boolean;
  readonly bytesIn: number;
  /** The first bytes weft answered (for oracles such as the admin guard). */
  readonly head: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Pick a delivery: mostly whole writes, some split, a few slow drips; all four endings. */
export function pickDelivery(rand: () => number): Delivery {
  const p = rand();
  const e = rand();
  return {
    pacing: p < 0.55 ? "whole" : p < 0.85 ? "split" : "drip",
    ending: e < 0.55 ? "wait" : e < 0.75 ? "half" : e < 0.9 ? "rst" : "drop",
    waitMs: 150 + Math.floor(rand() * 250),
  };
}

function open(t: Transport): Promise<{ raw: net.Socket; s: net.Socket } | undefined> {
  return new Promise((resolve) => {
    const raw = net.connect({
      host: t.host,
      port: t.port,
      ...(t.kind === "tcp" && t.localAddress ? { localAddress: t.localAddress } : {}),
    });
    raw.on("error", () => {});
    const timer = setTimeout(() => {
      raw.destroy();
      resolve(undefined);
    }, 3000);
    raw.once("close", () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    raw.once("connect", () => {
      if (t.kind === "tcp") {
        clearTimeout(timer);
        return resolve({ raw, s: raw });
      }
      const s = tls.connect({
        socket: raw,
        cert: t.cert,
        key: t.key,
        ca: t.ca,
        ALPNProtocols: t.alpn ?? ["h2"],
        checkServerIdentity: () => undefined,
      });
      s.on("error", () => {});
      s.once("secureConnect", () => {
        clearTimeout(timer);
        resolve({ raw, s });
      });
    });
  });
}

export async function deliver(
  t: Transport,
  pieces: readonly Uint8Array[],
  d: Delivery,
  rand: () => number,
): Promise<Outcome> {
  const c = await open(t);
  if (!c) return { connected: false, closedByPeer: true, bytesIn: 0, head: "" };
  const { raw, s } = c;
  let peerClosed = false;
  let bytesIn = 0;
  let head = "";
  const closed = new Promise<void>((r) => {
    s.once("end", () => {
      peerClosed = true;
      r();
    });
    s.once("close", () => {
      peerClosed = true;
      r();
    });
  });
  s.on("data", (b: Uint8Array) => {
    bytesIn += b.length;
    if (head.length < 512) head += new TextDecoder().decode(b.subarray(0, 512));
  });
  const writeAll = async (): Promise<void> => {
    for (const p of pieces) {
      if (peerClosed || s.destroyed) return;
      if (d.pacing === "whole") {
        s.write(p);
        continue;
      }
      // Cut each piece at random points; a drip waits between the cuts (bounded: ≤ 400 ms).
      let at = 0;
      while (at < p.length && !s.destroyed) {
        const n = 1 + Math.floor(rand() * Math.min(p.length - at, d.pacing === "drip" ? 64 : 4096));
        s.write(p.subarray(at, at + n));
        at += n;
        if (d.pacing === "drip") await sleep(Math.floor(rand() * 8));
      }
      if (d.pacing === "split") await sleep(0);
    }
  };
  await Promise.race([writeAll(), sleep(600)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const wait = (ms: number) =>
    Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() =>
      clearTimeout(timer)
    );
  switch (d.ending) {
    case "wait":
      await wait(d.waitMs);
      break;
    case "half":
      if (!s.destroyed) s.end();
      await wait(d.waitMs);
      break;
    case "rst":
      await wait(Math.floor(d.waitMs / 4));
      break;
    case "drop":
      break;
  }
  const byPeer = peerClosed;
  if (d.ending === "rst") raw.resetAndDestroy();
  else {
    s.destroy();
    raw.destroy();
  }
  return { connected: true, closedByPeer: byPeer, bytesIn, head };
}
