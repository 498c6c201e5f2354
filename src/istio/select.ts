/** Label selection as Kubernetes and Istio define it: every selector label equal. */
export function labelsMatch(
  labels: Readonly<Record<string, string>>,
  selector: Readonly<Record<string, string>>,
): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/** Istio's host resolution: a short name resolves in the object's namespace
 * (`reviews` → reviews.<ns>.svc.cluster.local), `name.ns` gets the cluster suffix, anything longer
 * is taken as written. */
export function hostFqdn(host: string, namespace: string): string {
  const dots = host.split(".").length - 1;
  if (dots === 0) return `${host}.${namespace}.svc.cluster.local`;
  if (dots === 1) return `${host}.svc.cluster.local`;
  return host;
}
