/**
 * Which workloads each service selects, computed once per mesh through a label index and reused
 * across reloads while the workloads are the same objects; short identity keys for workloads and
 * endpoint lists (the build's reuse keys).
 */
import type { Mesh, MeshService, MeshWorkload } from "./mesh.ts";

export const matches = (labels: Record<string, string>, sel: Record<string, string>): boolean =>
  Object.entries(sel).every(([k, v]) => labels[k] === v);

const indexes = new WeakMap<Mesh, Map<string, MeshWorkload[]>>();
/** The last index built, reused by a mesh with the same workloads. */
let lastIndex = { sig: "", idx: new Map<string, MeshWorkload[]>() };

/** Workloads by "label=value", so selecting endpoints is linear in the mesh, not quadratic. */
export function indexOf(mesh: Mesh): Map<string, MeshWorkload[]> {
  let idx = indexes.get(mesh);
  if (idx) return idx;
  const sig = workloadSig(mesh);
  if (lastIndex.sig === sig) {
    indexes.set(mesh, lastIndex.idx);
    return lastIndex.idx;
  }
  indexes.set(mesh, idx = new Map());
  lastIndex = { sig, idx };
  for (const w of mesh.workloads) {
    for (const [k, v] of Object.entries(w.labels)) {
      const key = `${k}=${v}`;
      const list = idx.get(key);
      if (list) list.push(w);
      else idx.set(key, [w]);
    }
  }
  return idx;
}

/** A service's selection and the workload signature it was made under: a service object is
 * reused across meshes (mesh.ts) while the workloads may differ. */
const selections = new WeakMap<MeshService, { sig: string; out: MeshWorkload[] }>();

/** What selecting workloads is made of: the workloads (frozen; those of unchanged manifests are
 * the same objects across reloads, so identity stands for content), as a token once per mesh:
 * the same token as the previous mesh when its workloads are the same objects in the same
 * order, a new one otherwise. */
const workloadSigs = new WeakMap<Mesh, string>();
let lastWorkloads: { list: readonly MeshWorkload[]; sig: string } = { list: [], sig: "w0" };
let nextSig = 1;
export function workloadSig(mesh: Mesh): string {
  let sig = workloadSigs.get(mesh);
  if (sig !== undefined) return sig;
  const list = mesh.workloads;
  const old = lastWorkloads.list;
  const same = list.length === old.length && list.every((w, i) => w === old[i]);
  sig = same ? lastWorkloads.sig : `w${nextSig++}`;
  lastWorkloads = { list, sig };
  workloadSigs.set(mesh, sig);
  return sig;
}

/** Selections of the last mesh by selector, reused while the workloads are the same: a reload
 * that changed routes only does not select 10 000 workloads again. */
let lastSelections: { sig: string; bySelector: Map<string, MeshWorkload[]> } = {
  sig: "",
  bySelector: new Map(),
};

const selectorKeys = new WeakMap<MeshService, string>();
export function selectorKey(s: MeshService): string {
  let k = selectorKeys.get(s);
  if (k === undefined) {
    k = s.selector
      ? `s|${s.namespace}|${key(s.selector)}`
      : `e|${key([...s.endpointIps ?? []].sort())}`;
    selectorKeys.set(s, k);
  }
  return k;
}

/** The service's workloads: by label selector in its namespace (through the label index), or the
 * addresses of its EndpointSlices. */
export function selected(mesh: Mesh, s: MeshService): MeshWorkload[] {
  const sig = workloadSig(mesh);
  const held = selections.get(s);
  if (held?.sig === sig) return held.out;
  if (lastSelections.sig !== sig) lastSelections = { sig, bySelector: new Map() };
  const sk = selectorKey(s);
  let out = lastSelections.bySelector.get(sk);
  if (!out) {
    out = select(mesh, s);
    lastSelections.bySelector.set(sk, out);
  }
  selections.set(s, { sig, out });
  return out;
}

function select(mesh: Mesh, s: MeshService): MeshWorkload[] {
  const sel = s.selector;
  const first = sel ? Object.entries(sel)[0] : undefined;
  const candidates = first ? indexOf(mesh).get(`${first[0]}=${first[1]}`) ?? [] : mesh.workloads;
  return candidates.filter((w) =>
    sel
      ? w.namespace === s.namespace && matches(w.labels, sel)
      : s.endpointIps?.has(w.address) === true
  );
}

// Native JSON.stringify without a replacer: the keys of 20 000 resources cost a few ms.
export const key = (v: unknown): string => JSON.stringify(v);

const workloadKeys = new WeakMap<MeshWorkload, string>();
let nextWorkloadKey = 0;

/** A short key per workload object. Workloads are frozen, and those of unchanged manifests are
 * the same objects across reloads (mesh.ts), so identity stands for content: a changed workload
 * is a new object with a new key. Short keys keep comparing 20 000 keys per reload cheap. */
export function workloadKey(w: MeshWorkload): string {
  let k = workloadKeys.get(w);
  if (k === undefined) workloadKeys.set(w, k = (nextWorkloadKey++).toString(36));
  return k;
}

const endpointsKeys = new WeakMap<readonly MeshWorkload[], string>();
export function endpointsKey(ws: readonly MeshWorkload[]): string {
  let k = endpointsKeys.get(ws);
  if (k === undefined) endpointsKeys.set(ws, k = ws.map(workloadKey).join(","));
  return k;
}
