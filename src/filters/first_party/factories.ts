/**
 * Filter factories for the first-party plugins (Envoy's filter factories): each type of
 * filter_types.ts's FIRST_PARTY_TYPE / FIRST_PARTY_XDS_TYPE maps to its prebuilt component
 * (wasm_locator.ts), with Envoy-shaped xDS configs converted to the plugin's JSON here. A ref
 * with a url loads that module instead (a custom build of the same plugin).
 */
import type { FilterRef, HttpFilter } from "../../core/mod.ts";
import { ComponentFilter, type SandboxOptions } from "../component/component_filter.ts";
import { loadComponent } from "../component/component_loader.ts";
import {
  FIRST_PARTY,
  FIRST_PARTY_TYPE,
  FIRST_PARTY_XDS_TYPE,
  type FirstParty,
} from "../filter_types.ts";
import type { FilterFactory, FilterRegistry } from "../registry.ts";
import { faultConfigFromEnvoy } from "./fault_config.ts";
import { authzConfigFromEnvoyRbac } from "./rbac_config.ts";
import { firstPartyWasm } from "./wasm_locator.ts";

function pluginConfig(name: FirstParty, fromXds: boolean, config: unknown): unknown {
  if (!fromXds) return config;
  if (name === "fault") return faultConfigFromEnvoy(config);
  if (name === "authz") return authzConfigFromEnvoyRbac(config);
  return config;
}

export function firstPartyFactory(
  name: FirstParty,
  fromXds: boolean,
  sandbox: SandboxOptions,
): FilterFactory {
  return {
    async module(): Promise<Uint8Array> {
      return (await firstPartyWasm(name)).bytes;
    },
    async create(ref: FilterRef, bytes: Uint8Array): Promise<HttpFilter> {
      const config = pluginConfig(name, fromXds, ref.config);
      const c = await loadComponent(bytes, { maxMemoryBytes: sandbox.maxMemoryBytes });
      return await ComponentFilter.create(ref.name, ref.failPolicy, c, config, sandbox);
    },
  };
}

export function registerFirstParty(registry: FilterRegistry, sandbox: SandboxOptions): void {
  for (const name of FIRST_PARTY) {
    registry.register(FIRST_PARTY_TYPE[name], firstPartyFactory(name, false, sandbox));
    registry.register(FIRST_PARTY_XDS_TYPE[name], firstPartyFactory(name, true, sandbox));
  }
}
