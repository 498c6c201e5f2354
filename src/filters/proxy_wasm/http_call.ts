/**
 * `proxy_http_call`: a real HTTP request to a configured cluster; the result is delivered to the
 * root context with `proxy_on_http_call_response` (num_headers 0 = the call failed). A callout
 * whose VM died is dropped, never delivered into a dead instance (Kong#696).
 */
import { logger } from "../../core/mod.ts";
import type { HttpCallResult } from "./env_services.ts";
import type { ProxyWasmVm } from "./vm.ts";

const log = logger("proxy_wasm");
const DEFAULT_TIMEOUT_MS = 30_000;

async function perform(
  base: string,
  headers: [string, string][],
  body: Uint8Array,
  signal: AbortSignal,
): Promise<HttpCallResult> {
  let method = "GET";
  let path = "/";
  const h = new Headers();
  for (const [k, v] of headers) {
    if (k === ":method") method = v;
    else if (k === ":path") path = v;
    else if (k === ":authority") h.set("host", v);
    else if (!k.startsWith(":")) h.append(k, v);
  }
  const res = await fetch(base + path, {
    method,
    headers: h,
    ...(body.length && method !== "GET" && method !== "HEAD" ? { body } : {}),
    signal,
  });
  const out: [string, string][] = [[":status", String(res.status)]];
  res.headers.forEach((v, k) => out.push([k, v]));
  return { status: res.status, headers: out, body: new Uint8Array(await res.arrayBuffer()) };
}

export function startHttpCall(
  vm: ProxyWasmVm,
  id: number,
  base: string,
  headers: [string, string][],
  body: Uint8Array,
  timeoutMs: number,
): void {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs || DEFAULT_TIMEOUT_MS);
  const cancel = (): void => {
    clearTimeout(timer);
    ac.abort();
  };
  vm.callouts.add(cancel);
  perform(base, headers, body, ac.signal).then(
    (r) => r,
    (e) => {
      log.debug("proxy-wasm http call failed", { plugin: vm.settings.name, base, error: e });
      return undefined;
    },
  ).then((result) => {
    clearTimeout(timer);
    vm.callouts.delete(cancel);
    if (vm.dead) return;
    vm.httpCallResult = result;
    try {
      vm.callRoot(
        "proxy_on_http_call_response",
        id,
        result ? result.headers.length : 0,
        result ? result.body.length : 0,
        0,
      );
    } finally {
      vm.httpCallResult = undefined;
    }
  });
}
