/**
 * The `inpod:` section of weft.yaml (in-pod capture on a Linux node, issue 10), validated apart
 * from the rest of the bootstrap config. Absent = off; present = the node agent serves the pod
 * channel and opens each enrolled pod's listeners inside its network namespace (Bun and Deno).
 */
import type { Checker } from "../istio/mod.ts";

export interface InpodConfig {
  /** The ZDS-shaped unix socket `weft cni` talks to. */
  readonly socket: string;
  /** Where the enrolled pods are recorded (re-enrolled after an agent restart). */
  readonly stateDir: string;
  /** How long a removed pod's connections may finish after FIN. */
  readonly removeGraceMs: number;
}

export const INPOD_KEY = "inpod";

export function checkInpod(c: Checker, v: unknown): InpodConfig | undefined {
  if (v === undefined || v === null || v === false) return undefined;
  const o = c.obj(INPOD_KEY, v === true ? {} : v, ["socket", "stateDir", "removeGrace"]);
  return {
    socket: c.str("inpod.socket", o.socket, "/var/run/weft/zds.sock"),
    stateDir: c.str("inpod.stateDir", o.stateDir, "/var/run/weft/inpod"),
    removeGraceMs: c.duration("inpod.removeGrace", o.removeGrace, 1000),
  };
}
