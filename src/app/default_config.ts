/**
 * The embedded default used by `weft run` with no --config (`deno task start`): one node on
 * loopback with a dev CA in .weft/ca, the admin/metrics/readiness ports and SOCKS5, one local
 * workload and one service so a laptop user can try a tunnel through weft itself:
 * curl --socks5 127.0.0.1:15080 http://127.10.0.1:80/ reaches 127.0.1.1:8080 over HBONE.
 */
export const DEFAULT_CONFIG_YAML = `
node:
  name: weft-local
  trustDomain: cluster.local
  defaultSourceWorkload: local-app
ca:
  mode: auto
  stateDir: .weft/ca
workloads:
  - name: local-app
    namespace: default
    serviceAccount: local-app
    address: 127.0.1.1
    ports: [8080]
services:
  - name: local-app
    namespace: default
    vips: [127.10.0.1]
    ports: [{ port: 80, targetPort: 8080 }]
    endpoints:
      - workload: local-app
        namespace: default
        serviceAccount: local-app
        address: 127.0.1.1
`;

/** `weft run --xds host:port` without --config: everything (workloads, services, policies and
 * certificates) comes from the control plane; --node names this node's view. */
export const XDS_DEFAULT_CONFIG_YAML = `
node:
  name: weft-local
  trustDomain: cluster.local
ca:
  mode: xds
`;
