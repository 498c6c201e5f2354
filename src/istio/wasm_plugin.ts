/** extensions.istio.io WasmPlugin. */
import { type Checker, INT32_MAX, isObj, type Raw } from "./check.ts";
import { meta, policyTarget } from "./meta.ts";
import { isOciUrl, parseOciRef } from "./oci_ref.ts";
import type { WasmPlugin } from "./types.ts";

export function parseWasmPlugin(c: Checker, doc: Raw): WasmPlugin {
  const m = meta(c, doc.metadata);
  const spec = c.obj("spec", doc.spec, [
    "selector",
    "targetRef",
    "targetRefs",
    "url",
    "sha256",
    "imagePullPolicy",
    "imagePullSecret",
    "verificationKey",
    "pluginConfig",
    "pluginName",
    "phase",
    "priority",
    "failStrategy",
    "vmConfig",
    "match",
    "type",
  ]);
  const url = ociUrl(c, c.str("spec.url", spec.url));
  const pullPolicy = c.oneOf("spec.imagePullPolicy", spec.imagePullPolicy, [
    "UNSPECIFIED_POLICY",
    "IfNotPresent",
    "Always",
  ], "UNSPECIFIED_POLICY");
  const pullSecret = spec.imagePullSecret === undefined || spec.imagePullSecret === ""
    ? undefined
    : c.str(
      "spec.imagePullSecret",
      spec.imagePullSecret,
      undefined,
      /^[a-z0-9.-]{1,253}$/,
      "a Secret name",
    );
  c.unsupported("spec", spec, ["verificationKey"], "weft does not verify image signatures");
  c.oneOf("spec.type", spec.type, ["UNSPECIFIED_PLUGIN_TYPE", "HTTP"], "HTTP");
  const vm = c.obj("spec.vmConfig", spec.vmConfig, ["env"]);
  const env: Record<string, string> = {};
  c.list("spec.vmConfig.env", vm.env).forEach((e, i) => {
    const p = `spec.vmConfig.env[${i}]`;
    const o = c.obj(p, e, ["name", "value", "valueFrom"]);
    const from = c.oneOf(`${p}.valueFrom`, o.valueFrom, ["INLINE", "HOST"], "INLINE");
    const name = c.str(`${p}.name`, o.name);
    if (from === "HOST" && o.value !== undefined) {
      c.problems.add(`${p}.value`, "may only be set when valueFrom is INLINE (istio/api)");
    }
    // HOST: the value comes from the proxy's own environment (Istio); weft resolves it at load.
    env[name] = from === "HOST" ? `$HOST:${name}` : c.str(`${p}.value`, o.value, "");
  });
  // No match: Istio applies the plugin to all traffic; otherwise to what any entry selects.
  const match = c.list("spec.match", spec.match).map((x, i) => {
    const p = `spec.match[${i}]`;
    const o = c.obj(p, x, ["mode", "ports"]);
    const md = c.oneOf(
      `${p}.mode`,
      o.mode,
      ["UNDEFINED", "CLIENT", "SERVER", "CLIENT_AND_SERVER"],
      "CLIENT_AND_SERVER",
    );
    const ports = c.list(`${p}.ports`, o.ports).map((pp, j) => {
      const po = c.obj(`${p}.ports[${j}]`, pp, ["number"]);
      return c.int(`${p}.ports[${j}].number`, po.number, undefined, 1, 65535);
    });
    return { mode: md === "UNDEFINED" ? "CLIENT_AND_SERVER" as const : md, ports };
  });
  const ph = c.oneOf("spec.phase", spec.phase, [
    "AUTHN",
    "AUTHZ",
    "STATS",
    "UNSPECIFIED_PHASE",
    "UNSPECIFIED",
  ], "UNSPECIFIED");
  const phase = ph === "UNSPECIFIED_PHASE" ? "UNSPECIFIED" : ph;
  const abi = m.annotations["weft.dev/wasm-abi"] ?? "proxy-wasm";
  if (abi !== "proxy-wasm" && abi !== "component") {
    c.problems.add("metadata.annotations.weft.dev/wasm-abi", "must be proxy-wasm or component");
  }
  // istio/api: "" or 64 lowercase hex digits.
  const sha = spec.sha256 === undefined || spec.sha256 === ""
    ? undefined
    : c.str("spec.sha256", spec.sha256, undefined, /^[0-9a-f]{64}$/, "64 lowercase hex digits");
  const pinned = /@sha256:([0-9a-f]{64})$/.exec(url)?.[1];
  if (sha && pinned && sha !== pinned) {
    c.problems.add("spec.sha256", "must match the url's @sha256: digest (l7-semantics W3)");
  }
  // Istio's agent reads the pull settings from the VM env (istiod's ISTIO_META_WASM_IMAGE_PULL_*).
  if (pullPolicy !== "UNSPECIFIED_POLICY") env[PULL_POLICY_ENV] = pullPolicy;
  const { selector, refs } = policyTarget(c, spec);
  if (spec.pluginConfig !== undefined && spec.pluginConfig !== null && !isObj(spec.pluginConfig)) {
    // A google.protobuf.Struct in Istio: a mapping, handed to the plugin as JSON text.
    c.problems.add("spec.pluginConfig", "must be a mapping (a protobuf Struct)");
  }
  return {
    kind: "WasmPlugin",
    meta: m,
    selector,
    targetRefs: refs,
    url,
    sha256: sha,
    abi: abi === "component" ? "component" : "proxy-wasm",
    phase,
    priority: c.int("spec.priority", spec.priority, 0, -INT32_MAX - 1, INT32_MAX),
    pluginName: c.str(
      "spec.pluginName",
      spec.pluginName,
      m.name,
      /^.{1,256}$/s,
      "1-256 characters",
    ),
    pluginConfig: spec.pluginConfig ?? {},
    failStrategy: c.oneOf("spec.failStrategy", spec.failStrategy, [
      "FAIL_CLOSE",
      "FAIL_OPEN",
      "FAIL_RELOAD",
    ], "FAIL_CLOSE"),
    match,
    env,
    imagePullSecret: pullSecret,
  };
}

/** The pull policy as Istio's agent reads it from the plugin's VM env. */
export const PULL_POLICY_ENV = "ISTIO_META_WASM_IMAGE_PULL_POLICY";

/** W2: `oci://`, `file://`, `http(s)://`; no scheme is OCI (returned as `oci://…`). A malformed
 * image reference is a problem at `spec.url`. */
function ociUrl(c: Checker, url: string): string {
  if (url === "" || /^(file:\/\/|https?:\/\/)/.test(url)) return url;
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(url) && !url.startsWith("oci://")) {
    c.problems.add(
      "spec.url",
      `must be oci://, file://, http:// or https://, got ${JSON.stringify(url)}`,
    );
    return url;
  }
  const oci = isOciUrl(url) && !url.startsWith("oci://") ? `oci://${url}` : url;
  try {
    parseOciRef(oci);
  } catch (e) {
    c.problems.add("spec.url", `bad OCI image reference: ${(e as Error).message}`);
  }
  return oci;
}
