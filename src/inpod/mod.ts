/**
 * src/inpod — in-pod capture's control side on a Linux node: the ZDS-shaped pod channel, weft's
 * nftables table inside each pod, the pod state file and the `weft cni` plugin. The listeners in
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
export { runCni } from "./cni.ts";
