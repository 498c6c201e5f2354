/**
 * L7 wiring: turns a service's plugins (and, later, first-party chains) into FilterRefs, and
 * hands the data path an L7 hook for services that have filters.
 */
import type { FilterRef, Snapshot } from "../core/mod.ts";
import type { OutboundL7Hook } from "../core/mod.ts";
import type { ServiceConfig, WeftConfig } from "./config_types.ts";
import { pluginFilters } from "./snapshot_builder.ts";

export class L7Wiring {
  constructor(readonly opts: { dev: boolean }) {}

  readonly chainsFor = (
    svc: ServiceConfig,
    _cfg: WeftConfig,
  ): { inbound: FilterRef[]; outbound: FilterRef[] } => pluginFilters(svc);

  prepare(snapshot: Snapshot): Promise<Snapshot> {
    return Promise.resolve(snapshot);
  }

  hook(): OutboundL7Hook | undefined {
    return undefined;
  }

  reload(name: string): Promise<Record<string, unknown>> {
    return Promise.reject(new Error(`Cannot reload filter "${name}": no such filter`));
  }

  summary(): Record<string, unknown>[] {
    return [];
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
