/**
 * `proxy_http_call`: a real HTTP request to a configured cluster; the result is delivered to the
 * root context with `proxy_on_http_call_response` (num_headers 0 = the call failed). A callout
 * whose VM died is dropped, never delivered into a dead instance (Kong#696).
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { logger } from "../../core/mod.ts";
import type { HttpCallResult } from "./env_services.ts";
import type { ProxyWasmVm } from "./vm.ts";

const log = logger("proxy_wasm");
const DEFAULT_TIMEOUT_MS = 30_000;

/** node:http rather than fetch: fetch drops a caller-set Host, and `:authority` must become
 * the Host header as in Envoy. */
function perform(
  base: string,
  headers: [string, string][],
  body: Uint8Array,
  signal: AbortSignal,
): Promise<HttpCallResult> {
  let method = "GET";
  let path = "/";
  const h: Record<string, string | string[]> = {};
  for (const [k, v] of headers) {
    if (k === ":method") method = v;
    else if (k === ":path") path = v;
    else if (k === ":authority") h["host"] = v;
    else if (!k.startsWith(":")) {
      const prev = h[k];
      h[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
    }
  }
  if (body.length) h["content-length"] = String(body.length);
  const url = new URL(path, base);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers: h, signal }, (res) => {
      const chunks: Uint8Array[] = [];
      res.on("data", (c: Uint8Array) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const out: [string, string][] = [[":status", String(res.statusCode ?? 0)]];
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
        resolve({ status: res.statusCode ?? 0, headers: out, body: concat(chunks) });
      });
    });
    req.on("error", reject);
    req.end(body.length ? body : undefined);
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
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
