/**
 * weft.yaml's Istio objects: `authorizationPolicies` (Kubernetes form {metadata, spec}),
 * `resources` (inline manifests) and `configDir` (a directory of multi-document YAML files), all
 * parsed by src/istio. Standalone mode takes AuthorizationPolicy, PeerAuthentication,
 * VirtualService and DestinationRule; workloads and services stay in weft.yaml's own lists.
 */
import { readdirSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { AuthorizationPolicy } from "../core/mod.ts";
import {
  type Checker,
  convertPeerAuthentication,
  type DrSubset,
  hostFqdn,
  isObj,
  type IstioResources,
  loadIstioDocuments,
  parseAuthorizationPolicy,
  parseIstioObjects,
  type SourceText,
} from "../istio/mod.ts";

export interface ConfigResources {
  readonly policies: readonly AuthorizationPolicy[];
  /** FQDN → DestinationRule subsets. */
  readonly subsets: ReadonlyMap<string, readonly DrSubset[]>;
  /** FQDN → the VirtualService's raw `http` list (validated by src/istio). */
  readonly http: ReadonlyMap<string, readonly unknown[]>;
}

export function checkPolicies(c: Checker, v: unknown): AuthorizationPolicy[] {
  return c.list("authorizationPolicies", v).map((p, i) => {
    const saved = c.problems.context;
    c.problems.context = `${saved}authorizationPolicies[${i}].`;
    try {
      if (isObj(p) && !("spec" in p) && !("metadata" in p)) {
        c.problems.add(
          "",
          "must be an AuthorizationPolicy as Istio writes it ({metadata: {name, namespace}, " +
            "spec: {selector: {matchLabels}, action, rules}}); the flat form was removed",
        );
      }
      return parseAuthorizationPolicy(c, isObj(p) ? p : {}).policy;
    } finally {
      c.problems.context = saved;
    }
  });
}

const STANDALONE = [
  "AuthorizationPolicy",
  "PeerAuthentication",
  "VirtualService",
  "DestinationRule",
];

function readDir(dir: string): SourceText[] {
  return readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f) && !f.startsWith(".")).sort()
    .map((f) => ({ file: join(dir, f), text: readFileSync(join(dir, f), "utf8") }));
}

export function checkResources(
  c: Checker,
  inline: unknown,
  configDir: unknown,
  baseDir: string,
): ConfigResources {
  const results = [parseIstioObjects("resources", c.list("resources", inline))];
  const dir = c.optStr("configDir", configDir);
  if (dir !== undefined) {
    try {
      results.push(loadIstioDocuments(readDir(isAbsolute(dir) ? dir : join(baseDir, dir))));
    } catch (err) {
      c.problems.add("configDir", `cannot read: ${(err as Error).message}`);
    }
  }
  const policies: AuthorizationPolicy[] = [];
  const subsets = new Map<string, readonly DrSubset[]>();
  const http = new Map<string, readonly unknown[]>();
  for (const { resources: r, problems } of results) {
    for (const p of problems) c.problems.list.push(p);
    refuseOthers(c, r);
    policies.push(...r.authorizationPolicies.map((p) => p.policy));
    policies.push(...r.peerAuthentications.flatMap(convertPeerAuthentication));
    for (const dr of r.destinationRules) {
      subsets.set(hostFqdn(dr.host, dr.meta.namespace), dr.subsets);
    }
    for (const vs of r.virtualServices) {
      for (const h of vs.hosts) http.set(hostFqdn(h, vs.meta.namespace), vs.rawHttp);
    }
  }
  return { policies, subsets, http };
}

function refuseOthers(c: Checker, r: IstioResources): void {
  const others = [
    ...r.wasmPlugins,
    ...r.serviceEntries,
    ...r.workloadEntries,
    ...r.services,
    ...r.pods,
    ...r.endpointSlices,
  ];
  for (const o of others) {
    c.problems.add(
      `resources: ${o.kind} ${o.meta.namespace}/${o.meta.name}`,
      `standalone weft.yaml takes ${STANDALONE.join(", ")}; declare workloads, services and ` +
        "plugins in weft.yaml's own lists, or serve manifests with `weft control-plane`",
    );
  }
}
