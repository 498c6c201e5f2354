/**
 * Plaintext inbound capture (ztunnel's 15006) on a local workload's IP: traffic that arrived
 * without HBONE. PERMISSIVE workloads authorize it with no peer identity and forward it; STRICT
 * workloads refuse it. Without iptables there is no original destination port, so the target is
 * the workload's single declared port (a workload with several ports cannot use this listener).
 */
import { indexOf } from "./snapshot_index.ts";
import type { Socket } from "node:net";
import type { InboundDeps } from "./hbone_server.ts";
import { dialTcp } from "./l4_conn.ts";
import { emptyInfo, l4Metrics, setEnd } from "./l4_telemetry.ts";
import { joinHostPort } from "./ip.ts";
import { errorMessage } from "./errors.ts";

export function handlePlaintextInbound(
  deps: InboundDeps,
  sock: Socket,
  workloadAddress: string,
  /** The original destination port when the kernel redirected the connection (in-pod mode). */
  originalPort?: number,
): void {
  const snap = deps.snapshot();
  const wl = indexOf(snap).workloadByIp.get(workloadAddress);
  const refuse = (reason: string): void => {
    l4Metrics.refused.inc({ direction: "inbound", reason });
    sock.destroy();
  };
  if (!wl) return refuse("unknown_workload");
  if (wl.mtlsMode === "STRICT") return refuse("strict_mtls");
  const port = originalPort ?? (wl.ports.length === 1 ? wl.ports[0]! : undefined);
  if (port === undefined) return refuse("no_target_port");
  const srcIp = (sock.remoteAddress ?? "unknown").replace(/^::ffff:/, "");
  const info = emptyInfo(
    "inbound",
    joinHostPort(srcIp, sock.remotePort ?? 0),
    joinHostPort(wl.address, port),
  );
  setEnd(info, "dst", wl);
  // No peer identity on plaintext: the source is whatever workload holds that IP, if any.
  const from = indexOf(snap).workloadByIp.get(srcIp);
  if (from) setEnd(info, "src", from);
  const conn = deps.conns.create(info, sock);
  if (!conn) return refuse("max_connections");
  const attrs = {
    sourcePrincipal: undefined,
    sourceIp: srcIp,
    destinationIp: wl.address,
    destinationPort: port,
  };
  const decision = deps.authorize(snap, wl, attrs);
  if (!decision.allowed) return conn.fail("denied", decision.policy ?? "no allow policy matched");
  (deps.dial ?? dialTcp)(wl.address, port, snap.timeouts.connectMs, srcIp).then((up) => {
    if (sock.destroyed || conn.done) {
      up.destroy();
      return conn.fail("error", "client went away");
    }
    conn.recheck = () => {
      const now = deps.snapshot();
      const w = indexOf(now).workloadByIp.get(wl.address);
      return w?.name === wl.name && w.mtlsMode !== "STRICT" &&
        deps.authorize(now, w, attrs).allowed;
    };
    conn.attach(up);
  }, (e) => conn.fail("connect_failed", errorMessage(e)));
}
