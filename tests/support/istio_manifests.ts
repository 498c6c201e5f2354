/**
 * Test fixtures written compactly (workloads with their node, services with subsets, http routes
 * and plugins, policies) → the Kubernetes-style Istio manifests the control plane reads: Pod,
 * Service, DestinationRule, VirtualService, WasmPlugin, AuthorizationPolicy, MeshConfig. The
 * product only reads the manifests; this keeps the many small xDS test meshes short.
 */
import { parse, stringify } from "yaml";

type R = Record<string, unknown>;
const list = (v: unknown): R[] => (Array.isArray(v) ? v as R[] : []);

export function meshDocs(mesh: R): R[] {
  const docs: R[] = [];
  const settings = [
    "trustDomain",
    "rootNamespace",
    "hbonePort",
    "nodeAgentServiceAccount",
    "nodeTokens",
    "extensionProviders",
  ];
  if (settings.some((k) => mesh[k] !== undefined)) {
    docs.push({
      apiVersion: "weft.dev/v1alpha1",
      kind: "MeshConfig",
      metadata: { name: "mesh", namespace: "istio-system" },
      spec: Object.fromEntries(
        settings.filter((k) => mesh[k] !== undefined).map((k) => [k, mesh[k]]),
      ),
    });
  }
  for (const w of list(mesh.workloads)) {
    docs.push({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: w.name, namespace: w.namespace ?? "default", labels: w.labels ?? {} },
      spec: { nodeName: w.node, serviceAccountName: w.serviceAccount ?? "default" },
      status: { podIP: w.address },
    });
  }
  for (const s of list(mesh.services)) {
    const ns = (s.namespace as string | undefined) ?? "default";
    const name = s.name as string;
    docs.push({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: ns },
      spec: {
        clusterIPs: s.vips ?? [],
        selector: s.selector ?? { app: name },
        ports: list(s.ports).map((p) => {
          const proto = String(p.protocol ?? "TCP").toLowerCase();
          return {
            name: p.name ?? `${proto}-${p.port}`,
            port: p.port,
            targetPort: p.targetPort ?? p.port,
            appProtocol: proto,
          };
        }),
      },
    });
    if (list(s.subsets).length) {
      docs.push({
        apiVersion: "networking.istio.io/v1",
        kind: "DestinationRule",
        metadata: { name, namespace: ns },
        spec: { host: name, subsets: s.subsets },
      });
    }
    if (list(s.http).length) {
      docs.push({
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name, namespace: ns },
        spec: {
          hosts: [name],
          http: list(s.http).map((r) => {
            const routes = list(r.route);
            return {
              ...(r.match ? { match: r.match } : {}),
              ...(routes.length
                ? {
                  route: routes.map((d) => ({
                    destination: { host: name, ...(d.destination as R ?? {}) },
                    ...(routes.length > 1 ? { weight: d.weight ?? 1 } : {}),
                    ...(d.headers ? { headers: d.headers } : {}),
                  })),
                }
                : {}),
              ...(r.redirect ? { redirect: r.redirect } : {}),
              ...(r.mirror ? { mirror: r.mirror } : {}),
              ...(r.rewrite ? { rewrite: r.rewrite } : {}),
              ...(r.mirrors ? { mirrors: r.mirrors } : {}),
              ...(r.mirrorPercentage ? { mirrorPercentage: r.mirrorPercentage } : {}),
              ...(r.directResponse ? { directResponse: r.directResponse } : {}),
              ...(r.fault ? { fault: r.fault } : {}),
              ...(r.timeout ? { timeout: r.timeout } : {}),
              ...(r.retries ? { retries: r.retries } : {}),
              ...(r.headers ? { headers: r.headers } : {}),
              ...(r.corsPolicy ? { corsPolicy: r.corsPolicy } : {}),
            };
          }),
        },
      });
    }
    for (const p of list(s.plugins)) {
      docs.push({
        apiVersion: "extensions.istio.io/v1alpha1",
        kind: "WasmPlugin",
        metadata: {
          name: p.name,
          namespace: ns,
          ...(p.type !== "proxy-wasm" ? { annotations: { "weft.dev/wasm-abi": "component" } } : {}),
        },
        spec: {
          targetRefs: [{ kind: "Service", name }],
          url: p.url,
          ...(p.sha256 ? { sha256: p.sha256 } : {}),
          ...(p.phase ? { phase: p.phase } : {}),
          ...(p.priority !== undefined ? { priority: p.priority } : {}),
          ...(p.failStrategy ? { failStrategy: p.failStrategy } : {}),
          ...(p.pluginConfig !== undefined ? { pluginConfig: p.pluginConfig } : {}),
        },
      });
    }
  }
  for (const p of list(mesh.authorizationPolicies)) {
    docs.push({
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: {
        name: p.name,
        namespace: p.namespace ?? "default",
        ...(p.dryRun ? { annotations: { "istio.io/dry-run": "true" } } : {}),
      },
      spec: {
        ...(p.selector ? { selector: { matchLabels: p.selector } } : {}),
        ...(p.action ? { action: p.action } : {}),
        ...(p.provider ? { provider: p.provider } : {}),
        ...(p.rules ? { rules: p.rules } : {}),
      },
    });
  }
  // Any other manifests as written (an HTTPRoute, ...).
  for (const d of list(mesh.resources)) docs.push(d as R);
  return docs;
}

/** Multi-document YAML of `meshDocs(mesh)`. */
export function meshManifests(mesh: R): string {
  return meshDocs(mesh).map((d) => stringify(d)).join("---\n");
}

/** Same, from a compact mesh written as YAML text. */
export function meshManifestsFromYaml(text: string): string {
  return meshManifests((parse(text) ?? {}) as R);
}
