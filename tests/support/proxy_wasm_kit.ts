/**
 * Test kit for the proxy-wasm host: request/response contexts as the data path builds them, and the wasm modules built from source (the example plugins and the C test filter
 * in src/filters/proxy_wasm/testdata).
 */
import { join } from "node:path";
import { HeaderList } from "../../src/core/mod.ts";
import type {
  FilterRef,
  HttpRequestContext,
  HttpResponseContext,
  PeerInfo,
} from "../../src/core/mod.ts";
import {
  BUILD_DIR,
  buildCModule,
  buildProxyWasmPlugins,
  type ProxyWasmBuild,
} from "../../plugins/proxy-wasm/build.ts";

export const PEER: PeerInfo = {
  sourcePrincipal: "spiffe://cluster.local/ns/default/sa/client",
  sourceNamespace: "default",
  sourceAddress: "127.0.0.7",
  sourcePort: 40123,
  destinationAddress: "127.0.0.8",
  destinationPort: 8080,
  destinationService: "echo.default.svc.cluster.local",
  destinationWorkload: "echo",
  destinationNamespace: "default",
  destinationPrincipal: "spiffe://cluster.local/ns/default/sa/echo",
  mtls: true,
};

let requestSeq = 0;

export function request(
  headers: Record<string, string> = {},
  opts: { path?: string; method?: string; body?: Uint8Array } = {},
): HttpRequestContext {
  return {
    direction: "inbound",
    method: opts.method ?? "GET",
    path: opts.path ?? "/hello?x=1",
    authority: "echo.default.svc.cluster.local",
    scheme: "http",
    protocol: "HTTP/1.1",
    requestHeaders: new HeaderList(Object.entries(headers)),
    peer: PEER,
    requestId: `req-${++requestSeq}`,
    filterState: new Map(),
    requestBody: opts.body,
  };
}

export function response(status = 200, headers: Record<string, string> = {}): HttpResponseContext {
  return {
    status,
    responseHeaders: new HeaderList(Object.entries(headers)),
    responseBody: undefined,
  };
}

export function ref(
  name: string,
  url: string,
  config: unknown,
  failPolicy: FilterRef["failPolicy"] = "FAIL_CLOSE",
): FilterRef {
  return {
    name,
    type: "weft.proxy_wasm",
    url,
    sha256: undefined,
    config,
    failPolicy,
    phase: "UNSPECIFIED",
    priority: 0,
  };
}

const TESTDATA = join(import.meta.dirname!, "../../src/filters/proxy_wasm/testdata");

export function plugins(): Promise<ProxyWasmBuild> {
  return buildProxyWasmPlugins();
}

/** The C test filter (ABI 0.2.1, or 0.1.0), built from testdata/test_filter.c. */
export function testFilter(abi: "0.2.1" | "0.1.0" = "0.2.1"): Promise<string> {
  const out = join(BUILD_DIR, abi === "0.1.0" ? "test_filter_v010.wasm" : "test_filter.wasm");
  return buildCModule(join(TESTDATA, "test_filter.c"), out, {
    defines: abi === "0.1.0" ? ["ABI_V010"] : [],
  });
}

/** The C test filter as a reactor whose main is `__main_void` (test_init_steps reports 12). */
export function testFilterMainVoid(): Promise<string> {
  return buildCModule(
    join(TESTDATA, "test_filter.c"),
    join(BUILD_DIR, "test_filter_main_void.wasm"),
    {
      defines: ["REACTOR_MAIN_VOID"],
    },
  );
}

/** c-add-header built with a given default value (two generations for the hot-reload test). */
export function cAddHeaderWith(value: string): Promise<string> {
  const out = join(BUILD_DIR, `c_add_header_${value}.wasm`);
  return buildCModule(join(BUILD_DIR, "../c-add-header/add_header.c"), out, {
    defines: [`ADD_HEADER_VALUE="${value}"`],
  });
}

/** plugins/proxy-wasm/c-json-redact: the JSON body-rewriting proxy-wasm example. */
export function jsonRedact(): Promise<string> {
  return buildCModule(
    join(BUILD_DIR, "../c-json-redact/json_redact.c"),
    join(BUILD_DIR, "c_json_redact.wasm"),
  );
}
