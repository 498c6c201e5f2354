/**
 * core/v1 Secret of type `kubernetes.io/dockerconfigjson`: a WasmPlugin's `imagePullSecret`
 * (same namespace). Its `.dockerconfigjson` (base64 in `data`, or text in `stringData`) is kept
 * as text and travels like istiod sends it: in the plugin's VM env as
 * ISTIO_META_WASM_IMAGE_PULL_SECRET, read and removed by the node's OCI pull. Other Secret types
 * are refused with their path: weft reads Secrets for image pulls only.
 */
import { type Checker, isObj, type Raw } from "./check.ts";
import { meta } from "./meta.ts";
import type { PullSecret, WasmPlugin } from "./types.ts";

const KEY = ".dockerconfigjson";
const MAX_BYTES = 1 << 20;

export function parsePullSecret(c: Checker, doc: Raw): PullSecret {
  const m = meta(c, doc.metadata);
  if (doc.type !== "kubernetes.io/dockerconfigjson") {
    c.problems.add(
      "type",
      "weft reads only kubernetes.io/dockerconfigjson Secrets (a WasmPlugin imagePullSecret)",
    );
  }
  let text = "";
  const data = isObj(doc.data) ? doc.data : {};
  const stringData = isObj(doc.stringData) ? doc.stringData : {};
  const raw = stringData[KEY] ?? data[KEY];
  if (typeof raw !== "string" || raw.length > MAX_BYTES) {
    c.problems.add(`data.${KEY}`, `is required: docker config JSON (at most ${MAX_BYTES} bytes)`);
  } else if (stringData[KEY] !== undefined) text = raw;
  else {
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(
        Uint8Array.from(atob(raw), (ch) => ch.charCodeAt(0)),
      );
    } catch {
      c.problems.add(`data.${KEY}`, "must be base64");
    }
  }
  if (text) {
    let auths: unknown;
    try {
      auths = (JSON.parse(text) as { auths?: unknown })?.auths;
    } catch {
      // reported below
    }
    if (!isObj(auths)) c.problems.add(`data.${KEY}`, 'must be docker config JSON ({"auths": …})');
  }
  return { kind: "Secret", meta: m, dockerConfig: text };
}

/** The env entry istiod fills with the Secret's docker config (istio pilot/pkg/model/wasm.go). */
export const PULL_SECRET_ENV = "ISTIO_META_WASM_IMAGE_PULL_SECRET";

/** WasmPlugins with their `imagePullSecret` resolved into their VM env, as istiod does; a
 * missing Secret is reported through `warn` and the plugin pulls without credentials. */
export function withPullSecrets(
  plugins: readonly WasmPlugin[],
  secrets: readonly PullSecret[],
  warn: (warning: string) => void,
): WasmPlugin[] {
  return plugins.map((p) => {
    if (!p.imagePullSecret) return p;
    const s = secrets.find((x) =>
      x.meta.namespace === p.meta.namespace && x.meta.name === p.imagePullSecret
    );
    if (!s) {
      warn(
        `WasmPlugin ${p.meta.namespace}/${p.meta.name}: spec.imagePullSecret: no ` +
          `kubernetes.io/dockerconfigjson Secret ${p.meta.namespace}/${p.imagePullSecret}; ` +
          "pulling without credentials",
      );
      return p;
    }
    return { ...p, env: { ...p.env, [PULL_SECRET_ENV]: s.dockerConfig } };
  });
}
