/**
 * src/inpod — in-pod capture's control side on a Linux node: the ZDS-shaped pod channel, weft's
 * nftables table inside each pod, the pod state file, the `weft cni` plugin and its installer
 * (`weft cni install|uninstall`: the node's CNI bin dir and network config). The listeners in
 * the pods belong to src/core (pod_capture.ts). May import core only.
 */
export { PodAgent } from "./pod_agent.ts";
export type { PodAgentOptions, PodHost } from "./pod_agent.ts";
export {
  applyPodRules,
  hasPodRules,
  INPOD_TABLE,
  missingTools,
  podRules,
  removePodRules,
} from "./nft_rules.ts";
export { ZdsClient } from "./zds.ts";
export { DEFAULT_ZDS_SOCKET, runCni, SUPPORTED_CNI_VERSIONS } from "./cni.ts";
export {
  checkCniOptions,
  DEFAULT_CNI_BIN_DIR,
  DEFAULT_CNI_CONF_DIR,
  DEFAULT_CNI_PLUGIN,
  installCni,
  uninstallCni,
} from "./cni_install.ts";
export type { CniInstalled, CniInstallOptions, CniResult, CniUninstalled } from "./cni_install.ts";
export { chainWeft, primaryConfFile, unchainWeft } from "./cni_conflist.ts";
