/**
 * Test/bench support for first-party plugins: builds the plugin from its C sources, loads it with
 * the real filter host (src/filters/component: jco transpile, sandbox instrumentation, the
 * direct canonical-ABI binding) and drives it through the `HttpFilter` interface.
 */
import type {
  FilterOutcome,
  HttpFilter,
  HttpRequestContext,
  PeerInfo,
  RequestAuth,
} from "../../src/core/mod.ts";
import { HeaderList } from "../../src/core/mod.ts";
import { ComponentFilter, loadComponent } from "../../src/filters/mod.ts";
import { buildCPlugin } from "./build_c_plugin.ts";

const built = new Map<string, Promise<Uint8Array>>();
let scratch: string | undefined;

/** A per-process build directory, removed when the process ends. */
function scratchDir(): string {
  if (scratch === undefined) {
    const dir = Deno.makeTempDirSync({ prefix: "weft-first-party-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    scratch = dir;
  }
  return scratch;
}

/** Builds plugins/<name> once per process and returns the component bytes. */
export function pluginBytes(name: string, sources: readonly string[]): Promise<Uint8Array> {
  let p = built.get(name);
  if (!p) {
    p = buildCPlugin({ name, sources, outDir: scratchDir() }).then((a) => a.bytes);
    built.set(name, p);
  }
  return p;
}

/** Builds and loads once at module level, so the lazy file reads of the build and transpile
 * tooling finish before the first test starts (the ops sanitizer would blame that test). */
export async function prepare(name: string, sources: readonly string[]): Promise<void> {
  await loadComponent(await pluginBytes(name, sources), { maxMemoryBytes: 16 * 1024 * 1024 });
}

/** A configured filter generation, as the host would create it from a FilterRef. */
export async function loadPlugin(
  name: string,
  sources: readonly string[],
  config: unknown,
  filterName: string = name,
): Promise<ComponentFilter> {
  const component = await loadComponent(await pluginBytes(name, sources), {
    maxMemoryBytes: 16 * 1024 * 1024,
  });
  return await ComponentFilter.create(filterName, "FAIL_CLOSE", component, config);
}

export interface RequestSpec {
  readonly method?: string;
  readonly path?: string;
  readonly authority?: string;
  readonly scheme?: string;
  readonly headers?: Record<string, string | string[]>;
  /** Verified peer id (spiffe://...); omitted = plaintext. */
  readonly principal?: string;
  readonly sourceAddress?: string;
  readonly destinationAddress?: string;
  readonly destinationPort?: number;
  /** The JWT the host's jwt_authn filter verified (RequestAuthentication). */
  readonly requestAuth?: RequestAuth;
}

let nextId = 0;

export function request(spec: RequestSpec = {}): HttpRequestContext {
  const principal = spec.principal;
  const ns = principal?.match(/\/ns\/([^/]+)\//)?.[1];
  const peer: PeerInfo = {
    sourcePrincipal: principal,
    sourceNamespace: ns,
    sourceAddress: spec.sourceAddress ?? "10.0.0.1",
    sourcePort: 40000,
    destinationAddress: spec.destinationAddress ?? "10.0.1.1",
    destinationPort: spec.destinationPort ?? 8080,
    destinationService: "svc.default.svc.cluster.local",
    destinationWorkload: "svc-v1",
    destinationNamespace: "default",
    destinationPrincipal: "spiffe://cluster.local/ns/default/sa/svc",
    mtls: principal !== undefined,
  };
  return {
    direction: "inbound",
    method: spec.method ?? "GET",
    path: spec.path ?? "/",
    authority: spec.authority ?? "svc.default.svc.cluster.local",
    scheme: spec.scheme ?? "http",
    protocol: "HTTP/1.1",
    requestHeaders: new HeaderList(
      Object.entries(spec.headers ?? {}).flatMap(([k, v]) =>
        (Array.isArray(v) ? v : [v]).map((x): [string, string] => [k, x])
      ),
    ),
    peer,
    requestId: `req-${nextId++}`,
    filterState: new Map(),
    requestBody: undefined,
    ...(spec.requestAuth ? { requestAuth: spec.requestAuth } : {}),
  };
}

/** Calls the request hook the way the chain runner does (sync or async outcome). */
export async function decide(filter: HttpFilter, req: HttpRequestContext): Promise<FilterOutcome> {
  return await filter.onRequest(req);
}
