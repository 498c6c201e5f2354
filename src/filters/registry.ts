/**
 * Maps `FilterRef.type` to an implementation, and owns the table of filter type names.
 * `weft.component` (WIT components, this folder) is built in; the first-party plugins register
 * factories that bring their own prebuilt module (first_party/factories.ts); other hosts register
 * theirs (`weft.proxy_wasm`). A type nobody registered but whose ref has a `.wasm` url is a
 * component loaded from that url.
 */
import type { FilterRef, HttpFilter } from "../core/mod.ts";
import { WeftError } from "../core/mod.ts";
import { readFile } from "node:fs/promises";
import { filePathOf } from "./file_url.ts";
import { fetchOciModule, OciFetchError } from "./oci_fetch.ts";
import { loadComponent, sha256Hex } from "./component/component_loader.ts";
import {
  ComponentFilter,
  DEFAULT_SANDBOX,
  type SandboxOptions,
} from "./component/component_filter.ts";
import { registerFirstParty } from "./first_party/factories.ts";
import { COMPONENT_TYPE, JWT_AUTHN_TYPE } from "./filter_types.ts";
import { jwtAuthnFactory } from "./jwt/factory.ts";

export { COMPONENT_TYPE } from "./filter_types.ts";

/** Builds one configured generation of a filter; throws WeftError when the module or config is bad. */
export interface FilterFactory {
  create(ref: FilterRef, bytes: Uint8Array): Promise<HttpFilter>;
  /** The module of a ref without a url (first-party plugins ship theirs); else `ref.url` is read. */
  module?(ref: FilterRef): Promise<Uint8Array>;
}

export class FilterRegistry {
  private readonly factories = new Map<string, FilterFactory>();

  register(type: string, factory: FilterFactory): void {
    this.factories.set(type, factory);
  }

  types(): string[] {
    return [...this.factories.keys()];
  }

  factoryFor(ref: FilterRef): FilterFactory {
    const f = this.factories.get(ref.type) ??
      (ref.url?.endsWith(".wasm") ? this.factories.get(COMPONENT_TYPE) : undefined);
    if (!f) {
      throw new WeftError(
        "filter_unknown_type",
        `Cannot load filter ${ref.name}: no implementation for type "${ref.type}"`,
        {
          hint: `known types: ${this.types().join(", ")}`,
        },
      );
    }
    return f;
  }
}

export function componentFactory(sandbox: SandboxOptions = DEFAULT_SANDBOX): FilterFactory {
  return {
    async create(ref: FilterRef, bytes: Uint8Array): Promise<HttpFilter> {
      const c = await loadComponent(bytes, { maxMemoryBytes: sandbox.maxMemoryBytes });
      return await ComponentFilter.create(ref.name, ref.failPolicy, c, ref.config, sandbox);
    },
  };
}

/** Components and the first-party plugins (registered by first_party/factories.ts). */
export function defaultRegistry(sandbox: SandboxOptions = DEFAULT_SANDBOX): FilterRegistry {
  const r = new FilterRegistry();
  r.register(COMPONENT_TYPE, componentFactory(sandbox));
  registerFirstParty(r, sandbox);
  r.register(JWT_AUTHN_TYPE, jwtAuthnFactory());
  return r;
}

/** Local path of a ref's url (file:// URL or plain path); undefined for remote urls. */
export function localPath(url: string): string | undefined {
  if (url.startsWith("file://")) return filePathOf(url);
  if (/^[a-z]+:\/\//i.test(url)) return undefined;
  return url;
}

/** A fetch (or a whole OCI pull) never holds a load (and readiness) longer than this. */
const FETCH_TIMEOUT_MS = 30_000;

async function download(url: string): Promise<Uint8Array> {
  const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

/** Reads a ref's module bytes (from its url, or from its factory when it has none) and checks
 * its sha256 when the ref pins one. */
export async function fetchModule(ref: FilterRef, factory?: FilterFactory): Promise<Uint8Array> {
  if (!ref.url && factory?.module) return await factory.module(ref);
  if (!ref.url) throw new WeftError("filter_fetch", `Cannot load filter ${ref.name}: no url`);
  let bytes: Uint8Array;
  try {
    const p = localPath(ref.url);
    bytes = p !== undefined
      ? await readFile(p)
      : ref.url.startsWith("oci://")
      ? await fetchOciModule(ref, AbortSignal.timeout(FETCH_TIMEOUT_MS))
      : await download(ref.url);
  } catch (e) {
    if (e instanceof OciFetchError && e.kind === "sha256") {
      throw new WeftError("filter_sha256", `Cannot load filter ${ref.name}: ${e.message}`, {
        cause: e,
      });
    }
    const why = e instanceof OciFetchError ? `: ${e.message}` : "";
    throw new WeftError(
      "filter_fetch",
      `Cannot load filter ${ref.name}: cannot read ${ref.url}${why}`,
      {
        cause: e,
      },
    );
  }
  // An OCI ref's sha256 is its image digest, checked by the pull (oci_fetch.ts).
  const oci = ref.url.startsWith("oci://");
  if (ref.sha256 && !oci && sha256Hex(bytes) !== ref.sha256.toLowerCase()) {
    throw new WeftError(
      "filter_sha256",
      `Cannot load filter ${ref.name}: sha256 of ${ref.url} does not match`,
    );
  }
  return bytes;
}
