/**
 * Registers the ext_authz filter type (filter_types.ts EXT_AUTHZ_TYPE) with a filter registry:
 * its module is the first-party authz plugin (the CUSTOM gate), its authorizer calls travel the
 * node's mesh dialer (or plain TCP to an IP literal).
 */
import type { FilterRef, HttpFilter, ServiceDial } from "../../core/mod.ts";
import { ComponentFilter, DEFAULT_SANDBOX } from "../component/component_filter.ts";
import { loadComponent } from "../component/component_loader.ts";
import { firstPartyWasm } from "../first_party/wasm_locator.ts";
import { EXT_AUTHZ_TYPE, EXT_AUTHZ_XDS_TYPE } from "../filter_types.ts";
import { extAuthzConfigFromXds } from "./config.ts";
import type { FilterFactory, FilterRegistry } from "../registry.ts";
import { Authorizer } from "./authorizer.ts";
import type { ExtAuthzFilterConfig } from "./config.ts";
import { ExtAuthzFilter } from "./filter.ts";

export function registerExtAuthz(registry: FilterRegistry, dialService: ServiceDial): void {
  registry.register(EXT_AUTHZ_TYPE, factory(dialService, (c) => c as ExtAuthzFilterConfig));
  registry.register(EXT_AUTHZ_XDS_TYPE, factory(dialService, extAuthzConfigFromXds));
}

function factory(
  dialService: ServiceDial,
  configOf: (raw: unknown) => ExtAuthzFilterConfig,
): FilterFactory {
  return {
    async module(): Promise<Uint8Array> {
      return (await firstPartyWasm("authz")).bytes;
    },
    async create(ref: FilterRef, bytes: Uint8Array): Promise<HttpFilter> {
      const cfg = configOf(ref.config);
      if (!cfg.provider) return new ExtAuthzFilter(ref.name, cfg, undefined, undefined);
      const c = await loadComponent(bytes, { maxMemoryBytes: DEFAULT_SANDBOX.maxMemoryBytes });
      const gate = await ComponentFilter.create(
        `${ref.name}.gate`,
        "FAIL_CLOSE",
        c,
        cfg.gate,
        DEFAULT_SANDBOX,
      );
      return new ExtAuthzFilter(ref.name, cfg, gate, new Authorizer(cfg.provider, dialService));
    },
  };
}
