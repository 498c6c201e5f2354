/**
 * Istio Address resources (ztunnel's workload API): every workload, with its services map and
 * bound selector policies, and every service; and what they are made of, so a reload that did not
 * touch them (a route edit) reuses all of them.
 */
import { create } from "@bufbuild/protobuf";
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import { IstioAddressSchema } from "../proto.ts";
import { ADDRESS } from "../type_urls.ts";
import type { NodeResources } from "./build.ts";
import {
  indexOf,
  key,
  matches,
  selected,
  selectorKey,
  workloadKey,
  workloadSig,
} from "./build_select.ts";
import { anyOf, ipBytes, type PortLists, workloadAddressBytes, workloadUid } from "./build_wire.ts";
import type { Mesh, MeshService, MeshWorkload } from "./mesh.ts";
import type { AuthorizationPolicy } from "../../core/mod.ts";

const APP_PROTOCOL: Record<string, number> = { HTTP: 1, HTTP2: 2, GRPC: 3 };

/** workload → {"namespace/hostname" → ports} for every service selecting it (istiod's
 * Workload.services map), built once per mesh from each service's selection. */
function servicesByWorkload(mesh: Mesh): Map<MeshWorkload, { lists: PortLists; key: string }> {
  const out = new Map<MeshWorkload, { lists: PortLists; key: string }>();
  for (const s of mesh.services) {
    const ports = s.ports.map((p) => ({ servicePort: p.port, targetPort: p.targetPort }));
    const name = `${s.namespace}/${s.hostname}`;
    // What this entry adds to a workload's Address (its key names the content, see put).
    const part = key([name, ports]);
    for (const w of selected(mesh, s)) {
      let m = out.get(w);
      if (!m) out.set(w, m = { lists: {}, key: "" });
      m.lists[name] = { ports };
      m.key += part;
    }
  }
  return out;
}

/** The TCP-only services (no HTTP port) a policy's targetRefs name, in its namespace. */
export function tcpTargets(mesh: Mesh, p: AuthorizationPolicy): MeshService[] {
  if (!p.targetServices) return [];
  return mesh.services.filter((s) =>
    s.namespace === p.namespace && p.targetServices!.includes(s.name) &&
    s.ports.every((port) => port.protocol === "TCP")
  );
}

/** workload → "ns/name" of the selector policies bound to it. */
export function policiesByWorkload(mesh: Mesh): Map<MeshWorkload, string[]> {
  const out = new Map<MeshWorkload, string[]>();
  for (const [w, names] of mesh.policyBindings) out.set(w, [...names]);
  // A policy attached by targetRefs to a TCP-only service binds that service's workloads at L4
  // (an HTTP service's is enforced by its inbound L7 listener: build.ts).
  for (const p of mesh.authorizationPolicies) {
    if (p.action === "CUSTOM") continue;
    for (const s of tcpTargets(mesh, p)) {
      for (const w of selected(mesh, s)) {
        let l = out.get(w);
        if (!l) out.set(w, l = []);
        if (!l.includes(`${p.namespace}/${p.name}`)) l.push(`${p.namespace}/${p.name}`);
      }
    }
  }
  for (const p of mesh.authorizationPolicies) {
    const sel = p.selector;
    if (!sel || p.action === "CUSTOM") continue; // L7 only (ext_authz), as ztunnel
    const first = Object.entries(sel)[0];
    const candidates = first ? indexOf(mesh).get(`${first[0]}=${first[1]}`) ?? [] : mesh.workloads;
    for (const w of candidates) {
      if (w.namespace !== p.namespace || !matches(w.labels, sel)) continue;
      let l = out.get(w);
      if (!l) out.set(w, l = []);
      l.push(`${p.namespace}/${p.name}`);
    }
  }
  return out;
}

function serviceAddress(s: MeshService) {
  return create(IstioAddressSchema, {
    type: {
      case: "service",
      value: {
        name: s.name,
        namespace: s.namespace,
        hostname: s.hostname,
        addresses: s.vips.map((v) => ({ network: "", address: ipBytes(v) })),
        ports: s.ports.map((p) => ({
          servicePort: p.port,
          targetPort: p.targetPort,
          appProtocol: APP_PROTOCOL[p.protocol] ?? 0,
        })),
        subjectAltNames: [...(s.subjectAltNames ?? [])],
      },
    },
  });
}

/** Everything the Address resources of a mesh are made of, per built view. */
export const addressKeys = new WeakMap<NodeResources, string>();
export function addressInputs(mesh: Mesh): string {
  return `${workloadSig(mesh)}|${
    key([
      mesh.trustDomain,
      mesh.services.map(serviceAddressKey),
      mesh.authorizationPolicies.map((p) => [
        p.namespace,
        p.name,
        p.selector ?? null,
        p.targetServices ?? null,
      ]),
      [...mesh.policyBindings].map(([w, names]) => [workloadKey(w), names]),
    ])
  }`;
}

const serviceAddressKeys = new WeakMap<MeshService, string>();
function serviceAddressKey(s: MeshService): string {
  let k = serviceAddressKeys.get(s);
  if (k === undefined) {
    k = key([
      s.name,
      s.namespace,
      s.hostname,
      s.vips,
      s.ports,
      selectorKey(s),
      s.subjectAltNames ?? [],
    ]);
    serviceAddressKeys.set(s, k);
  }
  return k;
}

export function buildAddresses(
  mesh: Mesh,
  put: (t: string, name: string, k: string, make: () => Any) => void,
  bound: Map<MeshWorkload, string[]>,
): void {
  const svcs = servicesByWorkload(mesh);
  const none = { lists: {}, key: "" };
  for (const w of mesh.workloads) {
    const services = svcs.get(w) ?? none;
    const policies = bound.get(w) ?? [];
    put(
      ADDRESS,
      workloadUid(mesh, w),
      `${workloadKey(w)}|${mesh.trustDomain}|${services.key}|${policies.join(",")}`,
      () => anyOf(ADDRESS, workloadAddressBytes(mesh, w, services.lists, policies)),
    );
  }
  for (const s of mesh.services) {
    put(
      ADDRESS,
      `${s.namespace}/${s.hostname}`,
      key([s.name, s.vips, s.ports, s.subjectAltNames ?? []]),
      () => anyPack(IstioAddressSchema, serviceAddress(s)),
    );
  }
}
