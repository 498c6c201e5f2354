/**
 * `weft control-plane --config-dir DIR | --config FILE | FILE... [--address 127.0.0.1:15010]
 * [--ca-dir .weft/ca] [--tls [--client-auth mtls|token|jwt] | --insecure-plaintext]
 * [--jwks FILE --jwt-issuer URL] [--trusted-node-accounts ns/sa,...]`: the embedded
 * control plane (ADS delta + SotW from Kubernetes-style
 * manifests, pushed on every edit) and the CA service node agents get workload certificates from.
 */
import { env, errorMessage, gcSetting, logger, onSignal, settleAfterStart } from "../core/mod.ts";
import { openCa } from "../tls/mod.ts";
import {
  controlPlaneIdentity,
  loadMesh,
  type SaTokenOptions,
  startControlPlane,
  startServingCertificate,
} from "../xds/mod.ts";
import type { Flags } from "./cli.ts";
import { out } from "./out.ts";

const log = logger("control_plane");

export async function runControlPlane(f: Flags): Promise<number> {
  const paths = [
    ...(f.values.get("config-dir") ? [f.values.get("config-dir")!] : []),
    ...(f.values.get("config") ? [f.values.get("config")!] : []),
    ...f.positional,
  ];
  if (paths.length === 0) {
    out.err(
      "Cannot start the control plane: no manifests (usage: weft control-plane --config-dir DIR)",
    );
    return 2;
  }
  const address = f.values.get("address") ?? "127.0.0.1:15010";
  const clientAuth = f.values.get("client-auth") ?? "mtls";
  if (clientAuth !== "mtls" && clientAuth !== "token" && clientAuth !== "jwt") {
    out.err(
      `Cannot start the control plane: --client-auth is mtls, token or jwt, got "${clientAuth}"`,
    );
    return 2;
  }
  if (f.values.has("client-auth") && !f.switches.has("tls")) {
    out.err("Cannot start the control plane: --client-auth needs --tls");
    return 2;
  }
  const jwtUsage = jwtFlagProblem(f, clientAuth);
  if (jwtUsage) {
    out.err(`Cannot start the control plane: ${jwtUsage}`);
    return 2;
  }
  if (!f.switches.has("tls") && !isLoopback(address)) {
    if (!f.switches.has("insecure-plaintext")) {
      out.err(
        `Cannot serve the control plane in plaintext on ${address}: plaintext is for loopback ` +
          "only (node tokens and certificates would cross the network in the clear); add --tls, " +
          "or --insecure-plaintext to accept that",
      );
      return 2;
    }
    log.warn("serving xDS and the CA in plaintext off loopback (--insecure-plaintext)", {
      address,
    });
  }
  let mesh;
  try {
    mesh = await loadMesh(paths);
  } catch (err) {
    out.err(`Cannot load manifests ${paths.join(", ")}: ${errorMessage(err)}`);
    return 1;
  }
  let serviceAccountTokens: SaTokenOptions | undefined;
  if (clientAuth === "jwt") {
    try {
      serviceAccountTokens = await saTokenOptions(f);
    } catch (err) {
      out.err(`Cannot start the control plane: ${errorMessage(err)}`);
      return 1;
    }
  }
  const ca = await openCa({ mode: "auto", stateDir: f.values.get("ca-dir") ?? ".weft/ca" });
  // The serving certificate is re-issued at half its lifetime, as istiod rotates its own.
  const tls = f.switches.has("tls")
    ? await startServingCertificate({
      ca,
      trustDomain: mesh.trustDomain,
      identity: controlPlaneIdentity(mesh.trustDomain),
    })
    : undefined;
  const cp = await startControlPlane({
    configPaths: paths,
    address,
    ca,
    ...(tls ? { tls, clientAuth } : {}),
    ...(serviceAccountTokens ? { serviceAccountTokens } : {}),
  }).catch(async (err) => {
    await tls?.close(); // its rotation timer must not keep a failed start alive
    throw err;
  });
  log.info("ready", {
    address: cp.address,
    mesh: paths,
    tls: tls !== undefined,
    ...(tls ? { clientAuth } : {}),
    ...(serviceAccountTokens
      ? {
        jwtIssuer: serviceAccountTokens.issuer,
        trustedNodeAccounts: serviceAccountTokens.trustedNodeAccounts ?? "(the mesh's)",
      }
      : {}),
    gc: gcSetting(),
  });
  settleAfterStart();
  await new Promise<void>((resolve) => {
    const offs: (() => void)[] = [];
    const done = (): void => {
      for (const off of offs) off();
      resolve();
    };
    offs.push(onSignal("SIGTERM", done), onSignal("SIGINT", done));
  });
  await cp.close();
  await tls?.close();
  log.info("stopped", {});
  return 0;
}

/** --jwks and --jwt-issuer come together, with --client-auth jwt only. */
function jwtFlagProblem(f: Flags, clientAuth: string): string | undefined {
  const given = ["jwks", "jwt-issuer", "trusted-node-accounts"].filter((k) => f.values.has(k));
  if (clientAuth !== "jwt") {
    return given.length ? `--${given[0]} needs --client-auth jwt` : undefined;
  }
  const missing = ["jwks", "jwt-issuer"].filter((k) => !f.values.get(k));
  return missing.length
    ? `--client-auth jwt needs ${missing.map((k) => `--${k}`).join(" and ")} (the ` +
      "service-account issuer's keys, `kubectl get --raw /openid/v1/jwks`, and its issuer, " +
      "`kubectl get --raw /.well-known/openid-configuration`)"
    : undefined;
}

/** istiod's CA_TRUSTED_NODE_ACCOUNTS shape: `ns/sa,ns/sa`. */
export function parseTrustedAccounts(text: string): { accounts: string[]; problems: string[] } {
  const accounts: string[] = [];
  const problems: string[] = [];
  for (const raw of text.split(",")) {
    const v = raw.trim();
    if (!v) continue;
    if (/^[^/\s]+\/[^/\s]+$/.test(v)) accounts.push(v);
    else problems.push(`"${v}" is not namespace/serviceaccount`);
  }
  return { accounts, problems };
}

async function saTokenOptions(f: Flags): Promise<SaTokenOptions> {
  const trusted = f.values.get("trusted-node-accounts") ?? env("CA_TRUSTED_NODE_ACCOUNTS");
  let trustedNodeAccounts: string[] | undefined;
  if (trusted) {
    const { accounts, problems } = parseTrustedAccounts(trusted);
    if (problems.length) {
      throw new Error(`--trusted-node-accounts (CA_TRUSTED_NODE_ACCOUNTS): ${problems.join("; ")}`);
    }
    trustedNodeAccounts = accounts;
  }
  // The verifier is the jwt_authn filter's: loaded only in this mode.
  const { saTokenVerifierFromFile } = await import("./sa_token_keys.ts");
  return {
    issuer: f.values.get("jwt-issuer")!,
    verify: await saTokenVerifierFromFile(f.values.get("jwks")!),
    ...(trustedNodeAccounts ? { trustedNodeAccounts } : {}),
  };
}

/** `weft ca init`: the mesh CA in --ca-dir, made once (kept when present), for a cluster's
 * Secret (both files) and root ConfigMap (ca-cert.pem as root-cert.pem). */
export async function runCaInit(f: Flags): Promise<number> {
  const dir = f.values.get("ca-dir") ?? ".weft/ca";
  try {
    const ca = await openCa({ mode: "auto", stateDir: dir });
    out.line(`${dir}/ca-cert.pem ${dir}/ca-key.pem (serial ${ca.serialNumber})`);
    return 0;
  } catch (err) {
    out.err(`Cannot make the CA in ${dir}: ${errorMessage(err)}`);
    return 1;
  }
}

/** The identity the control plane presents over mTLS (node agents expect it). */
function isLoopback(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(":")).replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
