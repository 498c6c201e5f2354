/**
 * weft.yaml → FilterRefs for the first-party plugins (plugins/authz, plugins/fault,
 * plugins/traffic-split); src/filters registers their factories, which load the prebuilt wasm.
 *  - inbound: AuthorizationPolicies that apply to the service's local workloads → authz (phase
 *    AUTHZ, after any AUTHZ WasmPlugin: Istio runs its RBAC filter after them); their CUSTOM
 *    ones → ext_authz, first of all (W12: before AUTHN WasmPlugins), with the provider
 *    MeshConfig extensionProviders names;
 *  - outbound: VirtualService `http` routes → traffic-split (last, as Envoy's router); their
 *    faults, timeouts and retries are the route policy the proxy applies per request
 *    (src/istio/route_policy.ts → src/core/route_fault.ts, route_exchange.ts).
 * xDS-delivered refs of the first-party types keep their type (the factories convert Envoy's
 * configs); they only get the service's name in front (scopeFirstParty).
 */
import { policiesFor } from "../core/mod.ts";
import type { FailPolicy, FilterRef, Snapshot, Workload } from "../core/mod.ts";
import {
  authzConfigFromPolicies,
  EXT_AUTHZ_TYPE,
  extAuthzConfig,
  FIRST_PARTY_TYPE as READY_TYPE,
  firstPartyOf,
  splitConfigFromRoutes,
} from "../filters/mod.ts";
import { type HttpRoute, labelsMatch, routesForSource, sourceSelectors } from "../istio/mod.ts";
import type { ServiceConfig, WeftConfig } from "./config_types.ts";
import { jwtAuthnRef } from "./request_authn_refs.ts";

function ref(
  name: string,
  type: string,
  config: unknown,
  phase: FilterRef["phase"],
  priority: number,
  failPolicy: FailPolicy = "FAIL_CLOSE",
): FilterRef {
  return { name, type, url: undefined, sha256: undefined, config, failPolicy, phase, priority };
}

/** Istio's WasmPlugin priority is an int32: ext_authz runs before every AUTHN plugin. */
const EXT_AUTHZ_PRIORITY = 2_147_483_647;

const isHttp = (svc: ServiceConfig): boolean => svc.ports.some((p) => p.protocol !== "TCP");

/** Local workloads behind a service on this node (by endpoint address). */
function localBackends(svc: ServiceConfig, workloads: readonly Workload[]): Workload[] {
  return workloads.filter((w) => svc.endpoints.some((e) => e.address === w.address));
}

export function firstPartyChains(
  svc: ServiceConfig,
  cfg: WeftConfig,
): { inbound: FilterRef[]; outbound: FilterRef[] } {
  const inbound: FilterRef[] = [];
  const outbound: FilterRef[] = [];
  if (!isHttp(svc)) return { inbound, outbound };
  const snap = {
    policies: cfg.authorizationPolicies,
    rootNamespace: cfg.node.rootNamespace,
  } as Snapshot;
  const local = localBackends(svc, cfg.workloads);
  if (local.length > 0) {
    const jwt = jwtAuthnRef(svc, local, cfg);
    if (jwt) inbound.push(jwt);
    const seen = new Set<string>();
    // Selector policies of the local backends, and those attached to this service by targetRefs.
    const targeted = cfg.authorizationPolicies.filter((p) =>
      p.namespace === svc.namespace && p.targetServices?.includes(svc.name)
    );
    const policies = [...local.flatMap((w) => policiesFor(snap, w)), ...targeted].filter((p) => {
      const k = `${p.namespace}/${p.name}`;
      return seen.has(k) ? false : (seen.add(k), true);
    });
    if (policies.some((p) => p.action === "CUSTOM")) {
      const hosts = new Set(cfg.services.map((s) => s.hostname));
      inbound.push(
        ref(
          `${svc.name}.${svc.namespace}.ext-authz`,
          EXT_AUTHZ_TYPE,
          extAuthzConfig(policies, cfg.extensionProviders, (h) => hosts.has(h)),
          "AUTHN",
          EXT_AUTHZ_PRIORITY,
        ),
      );
    }
    if (policies.some((p) => p.action !== "CUSTOM")) {
      inbound.push(
        ref(
          `${svc.name}.${svc.namespace}.authz`,
          READY_TYPE.authz,
          authzConfigFromPolicies(policies),
          "AUTHZ",
          -1_000_000,
        ),
      );
    }
  }
  if (svc.http.length > 0) {
    const selectors = sourceSelectors(svc.http);
    if (selectors.length === 0) outbound.push(...routeRefs(svc, svc.http, ""));
    else {
      // Routes with sourceLabels: Istio builds each proxy's routes for its own labels; here one
      // chain variant per way the node's workloads (and a source with none of the labels)
      // match the selectors, each ref marked with the variant it belongs to.
      const variants = new Map<string, Readonly<Record<string, string>>>();
      for (const labels of [{}, ...cfg.workloads.map((w) => w.labels)]) {
        variants.set(selectors.map((s) => labelsMatch(labels, s) ? 1 : 0).join(""), labels);
      }
      [...variants].forEach(([key, labels], i) => {
        const sources = { selectors, matches: [...key].map((c) => c === "1") };
        const refs = routeRefs(svc, routesForSource(svc.http, labels), `.src${i}`);
        outbound.push(...refs.map((r) => ({ ...r, sources })));
      });
    }
  }
  return { inbound, outbound };
}

/** A route list's traffic-split ref. Its faults are not a filter here: a route's fault applies
 * only to the requests that take that route (Envoy's per-route HTTPFault), which the proxy's route
 * policy decides with the route (src/core/route_fault.ts). */
function routeRefs(svc: ServiceConfig, all: readonly HttpRoute[], suffix: string): FilterRef[] {
  // The split plugin sees no port: match blocks naming a port the service does not serve HTTP
  // on are left out here (istiod builds routes per port and drops them the same way); the route
  // policy matches `port` per request.
  const ports = svc.ports.filter((p) => p.protocol !== "TCP").map((p) => p.port);
  const routes = routesForPorts(all, ports);
  return [
    ref(
      `${svc.name}.${svc.namespace}.traffic-split${suffix}`,
      READY_TYPE["traffic-split"],
      // Destination hosts are FQDNs already (config_service.ts). A request no route matches gets
      // Envoy's 404 (route_not_found), as from istiod's routes; a source left with no routes
      // (sourceLabels) takes the service as a whole, istiod's default route.
      splitConfigFromRoutes(
        // A route that answers itself (redirect, directResponse) still takes its requests: it
        // names the service, and the proxy's route policy replies before any upstream.
        routes.map((r) =>
          r.route.length ? r : {
            ...r,
            route: [{
              destination: { host: svc.hostname, subset: undefined, port: undefined },
              weight: 1,
            }],
          }
        ),
        svc.namespace,
        routes.length ? { noMatch: "notFound" } : {},
      ),
      "UNSPECIFIED",
      -1_000_000,
    ),
  ];
}

/** Routes without the match blocks whose `port` is none of `ports`; a route left without blocks
 * goes (as routesForSource does for sourceLabels). With one HTTP port this is exact; with several,
 * a block naming one of them applies to all in the split (the route policy still checks it). */
function routesForPorts(routes: readonly HttpRoute[], ports: readonly number[]): HttpRoute[] {
  const out: HttpRoute[] = [];
  for (const r of routes) {
    if (r.match.length === 0 || r.match.every((m) => m.port === undefined)) {
      out.push(r);
      continue;
    }
    const kept = r.match.filter((m) => m.port === undefined || ports.includes(m.port));
    if (kept.length) out.push({ ...r, match: kept });
  }
  return out;
}

/** xDS names first-party filters per filter type ("traffic-split"); the filter host keys
 * generations by name, so they get the service's name in front. */
export function scopeFirstParty(r: FilterRef, svc: { name: string; namespace: string }): FilterRef {
  const fp = firstPartyOf(r.type);
  return fp?.fromXds ? { ...r, name: `${svc.name}.${svc.namespace}.${r.name}` } : r;
}
