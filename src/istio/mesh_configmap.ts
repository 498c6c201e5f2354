/**
 * Istio's own MeshConfig form: the `istio` ConfigMap (or `istio-<revision>`) in istiod's
 * namespace, whose `data.mesh` holds MeshConfig as YAML (istio/api mesh/v1alpha1/config.proto).
 * weft reads the fields it implements (trustDomain, rootNamespace, defaultHttpRetryPolicy,
 * extensionProviders); every other field that is set is named in a warning with its path, since
 * a real installation's ConfigMap carries many proxy and telemetry settings weft has no use for.
 */
import { load } from "js-yaml";
import { logger } from "../core/mod.ts";
import { type Checker, isObj, type Raw } from "./check.ts";
import { DNS_NAME, meta } from "./meta.ts";
import { parseExtensionProviders } from "./ext_authz.ts";
import { parseHttpRetry } from "./virtual_service.ts";
import type { MeshConfig } from "./types.ts";

const log = logger("config");
const READ = ["trustDomain", "rootNamespace", "defaultHttpRetryPolicy", "extensionProviders"];
const MAX_MESH_BYTES = 1 << 20;

function warn(path: string, warning: string): void {
  log.warn("config warning", { path, warning });
}

export function parseMeshConfigMap(c: Checker, doc: Raw): MeshConfig {
  const m = meta(c, doc.metadata, "istio-system");
  if (m.name && !/^istio(-[a-z0-9.-]+)?$/.test(m.name)) {
    c.problems.add(
      "metadata.name",
      'weft reads only Istio\'s mesh ConfigMap ("istio" or "istio-<revision>", MeshConfig in ' +
        "data.mesh)",
    );
  }
  const data = c.obj("data", doc.data, Object.keys(isObj(doc.data) ? doc.data : {}));
  for (const k of Object.keys(data)) if (k !== "mesh") warn(`data.${k}`, "not read by weft");
  if (doc.binaryData !== undefined) warn("binaryData", "not read by weft");
  let mesh: Raw = {};
  const text = data.mesh;
  if (text !== undefined && typeof text !== "string") {
    c.problems.add("data.mesh", "must be a string holding MeshConfig YAML");
  } else if (typeof text === "string" && text.length > MAX_MESH_BYTES) {
    c.problems.add("data.mesh", `must be at most ${MAX_MESH_BYTES} bytes`);
  } else if (typeof text === "string") {
    try {
      const v = load(text, { maxAliases: 100 });
      if (v !== null && v !== undefined && !isObj(v)) {
        c.problems.add("data.mesh", "must hold a YAML mapping (MeshConfig)");
      } else mesh = v ?? {};
    } catch (err) {
      c.problems.add("data.mesh", `bad YAML: ${String((err as Error).message).split("\n")[0]}`);
    }
  }
  for (const k of Object.keys(mesh)) {
    if (!READ.includes(k)) {
      warn(`data.mesh.${k}`, "MeshConfig field not supported by weft: ignored");
    }
  }
  return {
    kind: "MeshConfig",
    meta: m,
    trustDomain: c.str(
      "data.mesh.trustDomain",
      mesh.trustDomain,
      "cluster.local",
      /^[a-z0-9.-]+$/,
      "a trust domain",
    ),
    rootNamespace: c.str(
      "data.mesh.rootNamespace",
      mesh.rootNamespace,
      "istio-system",
      DNS_NAME,
      "a namespace name",
    ),
    hbonePort: 15008,
    nodeAgentServiceAccount: "weft-node",
    nodeTokens: {},
    defaultHttpRetryPolicy: mesh.defaultHttpRetryPolicy === undefined
      ? undefined
      : parseHttpRetry(c, "data.mesh.defaultHttpRetryPolicy", mesh.defaultHttpRetryPolicy),
    extensionProviders: parseExtensionProviders(
      c,
      "data.mesh.extensionProviders",
      mesh.extensionProviders,
    ),
  };
}
