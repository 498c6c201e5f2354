/**
 * `weft control-plane --config mesh.yaml [--address 127.0.0.1:15010] [--ca-dir .weft/ca] [--tls]`:
 * the embedded control plane (ADS delta + SotW from a YAML mesh file, pushed on every edit) and the
 * CA service node agents get workload certificates from.
 */
import { readFile } from "node:fs/promises";
import { errorMessage, logger, onSignal } from "../core/mod.ts";
import { openCa } from "../tls/mod.ts";
import { parseMesh, startControlPlane } from "../xds/mod.ts";
import type { Flags } from "./cli.ts";
import { out } from "./out.ts";

const log = logger("control_plane");

export async function runControlPlane(f: Flags): Promise<number> {
  const configPath = f.values.get("config") ?? f.positional[0];
  if (!configPath) {
    out.err(
      "Cannot start the control plane: no mesh file (usage: weft control-plane --config mesh.yaml)",
    );
    return 2;
  }
  let mesh;
  try {
    mesh = parseMesh(await readFile(configPath, "utf8"));
  } catch (err) {
    out.err(`Cannot load mesh file ${configPath}: ${errorMessage(err)}`);
    return 1;
  }
  const ca = await openCa({ mode: "auto", stateDir: f.values.get("ca-dir") ?? ".weft/ca" });
  let tls;
  if (f.switches.has("tls")) {
    const leaf = await ca.issueLeaf(controlPlaneIdentity(mesh.trustDomain));
    tls = { rootsPem: leaf.rootsPem, certChainPem: leaf.chainPem, keyPem: leaf.keyPem };
  }
  const cp = await startControlPlane({
    configPath,
    address: f.values.get("address") ?? "127.0.0.1:15010",
    ca,
    ...(tls ? { tls } : {}),
  });
  log.info("ready", { address: cp.address, mesh: configPath, tls: tls !== undefined });
  await new Promise<void>((resolve) => {
    const offs: (() => void)[] = [];
    const done = (): void => {
      for (const off of offs) off();
      resolve();
    };
    offs.push(onSignal("SIGTERM", done), onSignal("SIGINT", done));
  });
  await cp.close();
  log.info("stopped", {});
  return 0;
}

/** The identity the control plane presents over mTLS (node agents expect it). */
export function controlPlaneIdentity(trustDomain: string): string {
  return `spiffe://${trustDomain}/ns/istio-system/sa/weft-control-plane`;
}
