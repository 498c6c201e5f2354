/**
 * `weft cni`: a chained CNI plugin (CNI spec 1.0: CNI_COMMAND ADD|DEL|CHECK|VERSION, CNI_NETNS,
 * CNI_CONTAINERID, CNI_IFNAME, CNI_ARGS, network config with prevResult on stdin) that enrolls
 * the pod with the node agent over its ZDS-shaped socket, as istio-cni hands pods to ztunnel.
 * ADD passes prevResult through unchanged; failures print the spec's error object with a code.
 * The pod is named by K8S_POD_UID from CNI_ARGS (the container ID without it).
 */
import { errorMessage } from "../core/mod.ts";
import { type AddWorkload, ZdsClient } from "./zds.ts";

export const DEFAULT_ZDS_SOCKET = "/var/run/weft/zds.sock";
// 1.1 adds GC and STATUS, which weft does not implement.
const SUPPORTED = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];
/** CNI error codes (spec, "Error" section) and weft's own (≥ 100). */
const E_VERSION = 1;
const E_ENV = 4;
const E_CONFIG = 6;
const E_TRY_LATER = 11;
const E_ENROLL = 100;

export interface CniOutcome {
  readonly stdout: string;
  readonly code: number;
}

interface NetConf {
  readonly cniVersion?: string;
  readonly name?: string;
  readonly prevResult?: {
    readonly ips?: readonly { readonly address?: string; readonly gateway?: string }[];
  };
  /** weft's own key: the agent's socket. */
  readonly zdsSocket?: string;
}

function fail(version: string, code: number, msg: string, details = ""): CniOutcome {
  return { stdout: JSON.stringify({ cniVersion: version, code, msg, details }) + "\n", code: 1 };
}

function cniArgs(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (s ?? "").split(";")) {
    const i = kv.indexOf("=");
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

interface Invocation {
  readonly cmd: "ADD" | "DEL" | "CHECK";
  readonly version: string;
  readonly uid: string;
  readonly socket: string;
  readonly add: AddWorkload | undefined;
  readonly prevResult: unknown;
}

/** Check the environment and config before talking to the agent; a CniOutcome on error. */
function invocation(
  env: Readonly<Record<string, string | undefined>>,
  stdin: string,
): Invocation | CniOutcome {
  const cmd = env.CNI_COMMAND ?? "";
  let conf: NetConf;
  try {
    conf = JSON.parse(stdin || "{}") as NetConf;
  } catch (e) {
    return fail("1.0.0", E_CONFIG, "Cannot parse the network configuration", errorMessage(e));
  }
  const version = conf.cniVersion ?? "1.0.0";
  if (!SUPPORTED.includes(version)) {
    return fail(version, E_VERSION, `Cannot handle cniVersion ${version}`);
  }
  if (cmd !== "ADD" && cmd !== "DEL" && cmd !== "CHECK") {
    return fail(
      version,
      E_ENV,
      `Cannot run: CNI_COMMAND "${cmd}" is not ADD, DEL, CHECK or VERSION`,
    );
  }
  const containerId = env.CNI_CONTAINERID;
  if (!containerId) return fail(version, E_ENV, "Cannot run: CNI_CONTAINERID is not set");
  const a = cniArgs(env.CNI_ARGS);
  const uid = a.K8S_POD_UID || containerId;
  const socket = conf.zdsSocket ?? DEFAULT_ZDS_SOCKET;
  const prev = conf.prevResult;
  if (cmd === "DEL") return { cmd, version, uid, socket, add: undefined, prevResult: prev };
  if (!prev?.ips?.length) {
    return fail(
      version,
      E_CONFIG,
      "Cannot enroll: no prevResult (chain weft after the main plugin)",
    );
  }
  const netns = env.CNI_NETNS;
  if (cmd === "ADD" && !netns) return fail(version, E_ENV, "Cannot enroll: CNI_NETNS is not set");
  const add: AddWorkload = {
    uid,
    netns: netns ?? "",
    ips: prev.ips.map((i) => i.address ?? "").filter((x) => x !== ""),
    nodeAddresses: prev.ips.map((i) => i.gateway ?? "").filter((x) => x !== ""),
    ...(a.K8S_POD_NAME
      ? {
        workloadInfo: {
          name: a.K8S_POD_NAME,
          namespace: a.K8S_POD_NAMESPACE ?? "default",
          serviceAccount: "",
        },
      }
      : {}),
  };
  return { cmd, version, uid, socket, add, prevResult: prev };
}

export async function runCni(
  env: Readonly<Record<string, string | undefined>>,
  stdin: string,
): Promise<CniOutcome> {
  if (env.CNI_COMMAND === "VERSION") {
    return {
      stdout: JSON.stringify({ cniVersion: "1.0.0", supportedVersions: SUPPORTED }) + "\n",
      code: 0,
    };
  }
  const inv = invocation(env, stdin);
  if ("code" in inv) return inv;
  const { cmd, version, uid } = inv;
  let client: ZdsClient;
  try {
    client = await ZdsClient.connect(inv.socket);
  } catch (e) {
    // The pod's rules go away with its namespace, so DEL succeeds without the agent (spec:
    // DEL must tolerate missing state).
    if (cmd === "DEL") return { stdout: "", code: 0 };
    return fail(version, E_TRY_LATER, "Cannot reach the weft node agent", errorMessage(e));
  }
  try {
    if (cmd === "DEL") {
      await client.send({ del: { uid } });
      return { stdout: "", code: 0 };
    }
    if (cmd === "CHECK") {
      const r = await client.send({ check: { uid } });
      if (r.ack.error) return fail(version, E_ENROLL, "Pod is not captured", r.ack.error);
      return { stdout: "", code: 0 };
    }
    const r = await client.send({ add: inv.add! });
    if (r.ack.error) return fail(version, E_ENROLL, "Cannot enroll the pod", r.ack.error);
    const prev = inv.prevResult as Record<string, unknown>;
    return { stdout: JSON.stringify({ ...prev, cniVersion: version }) + "\n", code: 0 };
  } finally {
    client.close();
  }
}
