/**
 * Offline validation of Kubernetes manifests against the API's schemas, from two maintained npm
 * packages generated from the Kubernetes OpenAPI spec:
 *  - kubernetes-models (tommy351): JSON-schema validators per kind — types, required fields,
 *    enums and formats;
 *  - @kubernetes/client-node (the Kubernetes project's JS client): each model's attribute map,
 *    used here to reject unknown fields (the API server's strict field validation), which the
 *    JSON schemas allow.
 */
import * as k8s from "@kubernetes/client-node/dist/gen/models/all.js";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Pod } from "kubernetes-models/v1/Pod";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";

interface Validating {
  validate(): void;
}
type Ctor = new (data: never) => Validating;

/** apiVersion/kind → [kubernetes-models class, client-node model name]. */
const KINDS: Record<string, [Ctor, string]> = {
  "v1/Namespace": [Namespace as unknown as Ctor, "V1Namespace"],
  "v1/ConfigMap": [ConfigMap as unknown as Ctor, "V1ConfigMap"],
  "v1/Service": [Service as unknown as Ctor, "V1Service"],
  "v1/ServiceAccount": [ServiceAccount as unknown as Ctor, "V1ServiceAccount"],
  "v1/Pod": [Pod as unknown as Ctor, "V1Pod"],
  "apps/v1/DaemonSet": [DaemonSet as unknown as Ctor, "V1DaemonSet"],
  "apps/v1/Deployment": [Deployment as unknown as Ctor, "V1Deployment"],
  "rbac.authorization.k8s.io/v1/ClusterRole": [ClusterRole as unknown as Ctor, "V1ClusterRole"],
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": [
    ClusterRoleBinding as unknown as Ctor,
    "V1ClusterRoleBinding",
  ],
  "rbac.authorization.k8s.io/v1/Role": [Role as unknown as Ctor, "V1Role"],
  "rbac.authorization.k8s.io/v1/RoleBinding": [RoleBinding as unknown as Ctor, "V1RoleBinding"],
};

interface Attr {
  readonly baseName: string;
  readonly type: string;
}
type Model = { getAttributeTypeMap(): readonly Attr[] };
const MODELS = k8s as unknown as Record<string, Model | undefined>;

const SCALARS = new Set(["string", "number", "boolean", "Date", "any", "IntOrString", "object"]);

/** Fields of `value` that the model `type` does not have, as paths. */
function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined || SCALARS.has(type)) return;
  const arr = type.match(/^Array<(.+)>$/);
  if (arr) {
    if (Array.isArray(value)) {
      value.forEach((v, i) => unknownFields(v, arr[1]!, `${path}[${i}]`, out));
    }
    return;
  }
  const map = type.match(/^\{ \[key: string\]: (.+); \}$/);
  if (map) {
    if (typeof value === "object") {
      for (const [k, v] of Object.entries(value)) unknownFields(v, map[1]!, `${path}.${k}`, out);
    }
    return;
  }
  const model = MODELS[type];
  if (!model) {
    out.push(`${path}: no schema for type ${type}`);
    return;
  }
  if (typeof value !== "object" || Array.isArray(value)) return; // the JSON schema reports types
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const t = attrs.get(k);
    if (t === undefined) out.push(`${path}.${k}: unknown field (not in ${type})`);
    else unknownFields(v, t, `${path}.${k}`, out);
  }
}

/** Every problem of one manifest: unsupported kind, schema errors, unknown fields. */
export function validateManifest(doc: unknown, where: string): string[] {
  if (typeof doc !== "object" || doc === null) return [`${where}: not a mapping`];
  const d = doc as { apiVersion?: string; kind?: string; metadata?: { name?: string } };
  const key = `${d.apiVersion}/${d.kind}`;
  const entry = KINDS[key];
  const name = `${where} ${d.kind ?? "?"}/${d.metadata?.name ?? "?"}`;
  if (!entry) return [`${name}: unsupported apiVersion/kind ${key}`];
  const out: string[] = [];
  try {
    new entry[0](doc as never).validate();
  } catch (e) {
    out.push(`${name}: ${(e as Error).message}`);
  }
  const found: string[] = [];
  unknownFields(doc, entry[1], "", found);
  out.push(...found.map((f) => `${name}: ${f}`));
  return out;
}
