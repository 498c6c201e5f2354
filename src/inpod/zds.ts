/**
 * The node agent's pod channel, shaped after ztunnel's ZDS (istio/ztunnel proto/zds.proto): the
 * client says hello (version V1), then sends requests — add (uid, workload info, the netns),
 * keep (uid, during a snapshot), del (uid), snapshotSent (every live pod was named: the rest
 * are removed) — and each gets one ack ({error: ""} on success). ZDS passes the netns as a file
 * descriptor with SCM_RIGHTS over SOCK_SEQPACKET; neither Bun nor Deno offers SCM_RIGHTS on
 * unix sockets through node:net, so weft sends the netns path (CNI_NETNS) on a stream socket,
 * one JSON message per line. `check` (CNI CHECK) is weft's own addition.
 */
import * as net from "node:net";
import { WeftError } from "../core/mod.ts";

export interface WorkloadInfo {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export interface AddWorkload {
  readonly uid: string;
  readonly workloadInfo?: WorkloadInfo | undefined;
  /** Path of the pod's network namespace (where ZDS passes an fd). */
  readonly netns: string;
  /** Pod IPs (from the CNI result). */
  readonly ips: readonly string[];
  /** The node's addresses as seen from the pod (CNI gateway): not captured. */
  readonly nodeAddresses?: readonly string[] | undefined;
}

export type ZdsRequest =
  | { readonly hello: { readonly version: "V1" } }
  | { readonly add: AddWorkload }
  | { readonly keep: { readonly uid: string } }
  | { readonly del: { readonly uid: string } }
  | { readonly snapshotSent: Record<string, never> }
  | { readonly check: { readonly uid: string } };

export interface ZdsAck {
  readonly ack: { readonly error: string };
}

const MAX_LINE = 64 * 1024;

/** Parse one request line; a string is the reason it is malformed. */
export function parseRequest(line: string): ZdsRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return "not JSON";
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "not an object";
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length !== 1) return "exactly one of hello, add, keep, del, snapshotSent, check";
  const body = o[keys[0]!] as Record<string, unknown> | undefined;
  if (typeof body !== "object" || body === null) return `${keys[0]}: must be an object`;
  const str = (k: string): boolean => typeof body[k] === "string" && (body[k] as string) !== "";
  switch (keys[0]) {
    case "hello":
      return body.version === "V1" ? { hello: { version: "V1" } } : "hello.version: must be V1";
    case "add": {
      if (!str("uid")) return "add.uid: required";
      if (!str("netns")) return "add.netns: required";
      const ips = body.ips;
      if (!Array.isArray(ips) || ips.length === 0 || ips.some((i) => typeof i !== "string")) {
        return "add.ips: a non-empty list of addresses";
      }
      const na = body.nodeAddresses;
      if (na !== undefined && (!Array.isArray(na) || na.some((i) => typeof i !== "string"))) {
        return "add.nodeAddresses: a list of addresses";
      }
      return { add: body as unknown as AddWorkload };
    }
    case "keep":
    case "del":
    case "check":
      if (!str("uid")) return `${keys[0]}.uid: required`;
      return { [keys[0]!]: { uid: body.uid as string } } as ZdsRequest;
    case "snapshotSent":
      return { snapshotSent: {} };
    default:
      return `unknown request ${keys[0]}`;
  }
}

/** Split a byte stream into lines, refusing lines over MAX_LINE. */
export function lineReader(
  sock: net.Socket,
  onLine: (line: string) => void,
  onTooLong: () => void,
): void {
  let buf = "";
  sock.setEncoding("utf8");
  sock.on("data", (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) onLine(line);
    }
    if (buf.length > MAX_LINE) {
      buf = "";
      onTooLong();
    }
  });
}

/** One client session: connect, hello, then request/ack in order. */
export class ZdsClient {
  private waiters: ((a: ZdsAck) => void)[] = [];
  private constructor(private sock: net.Socket) {}

  static connect(path: string, timeoutMs = 5000): Promise<ZdsClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ path });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new WeftError("zds_timeout", `Cannot reach the weft node agent at ${path}`));
      }, timeoutMs);
      sock.once("error", (e) => {
        clearTimeout(timer);
        reject(
          new WeftError("zds_unreachable", `Cannot reach the weft node agent at ${path}`, {
            cause: e.message,
          }),
        );
      });
      sock.once("connect", () => {
        clearTimeout(timer);
        const c = new ZdsClient(sock);
        lineReader(sock, (l) => c.onLine(l), () => sock.destroy());
        sock.on("close", () => {
          for (const w of c.waiters.splice(0)) w({ ack: { error: "connection closed" } });
        });
        c.send({ hello: { version: "V1" } }).then(
          (a) =>
            a.ack.error
              ? reject(new WeftError("zds_refused", `Cannot greet the agent: ${a.ack.error}`))
              : resolve(c),
          reject,
        );
      });
    });
  }

  private onLine(line: string): void {
    let a: ZdsAck;
    try {
      a = JSON.parse(line) as ZdsAck;
    } catch {
      a = { ack: { error: "bad answer from the agent" } };
    }
    this.waiters.shift()?.({ ack: { error: String(a?.ack?.error ?? "bad answer") } });
  }

  send(req: ZdsRequest): Promise<ZdsAck> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.sock.write(JSON.stringify(req) + "\n");
    });
  }

  close(): void {
    this.sock.end();
  }
}
