/**
 * CDS: a Cluster is one service port (or one subset of it). EDS clusters (config source ads or
 * self) warm on their ClusterLoadAssignment; STATIC clusters carry theirs inline. The service
 * and subset it belongs to come from `metadata.filter_metadata["weft"]` or Istio's
 * `outbound|<port>|<subset>|<hostname>` name.
 */
import type { Any } from "@bufbuild/protobuf/wkt";
import { Cluster_DiscoveryType, decodeCluster, TYPE_NAMES, unpackAs } from "../node_proto.ts";
import { CLUSTER, ENDPOINT } from "../type_urls.ts";
import { type AssignmentValue, assignmentValue } from "./endpoint.ts";
import {
  type Decoded,
  invalid,
  type ResourceType,
  str,
  strMap,
  weftMeta,
} from "./resource_type.ts";

export interface ClusterValue {
  readonly name: string;
  /** EDS resource name; undefined for STATIC. */
  readonly edsName: string | undefined;
  readonly inline: AssignmentValue | undefined;
  readonly hostname: string | undefined;
  readonly subset: string | undefined;
  readonly subsetLabels: Readonly<Record<string, string>>;
}

export const clusterType: ResourceType<ClusterValue> = {
  typeUrl: CLUSTER,
  decode(any: Any): Decoded<ClusterValue> {
    const c = unpackAs(any, TYPE_NAMES.cluster, decodeCluster);
    if (!c.name) throw invalid("cluster", "name is empty");
    const what = `cluster ${c.name}`;
    const md = weftMeta(c.metadata);
    const istio = /^outbound\|(\d+)\|([^|]*)\|(.+)$/.exec(c.name);
    const base = {
      name: c.name,
      hostname: str(md["hostname"]) ?? istio?.[3],
      subset: str(md["subset"]) ?? (istio?.[2] || undefined),
      subsetLabels: strMap(md["labels"]),
    };
    const type = c.clusterDiscoveryType.case === "type" ? c.clusterDiscoveryType.value : undefined;
    if (type === Cluster_DiscoveryType.EDS) {
      const src = c.edsClusterConfig?.edsConfig?.configSourceSpecifier.case;
      if (src !== "ads" && src !== "self") throw invalid(what, "eds_config must be ads or self");
      const edsName = c.edsClusterConfig?.serviceName || c.name;
      return { name: c.name, value: { ...base, edsName, inline: undefined } };
    }
    if (type === Cluster_DiscoveryType.STATIC || type === undefined) {
      if (!c.loadAssignment) throw invalid(what, "STATIC cluster needs load_assignment");
      const inline = assignmentValue(c.loadAssignment, what);
      return { name: c.name, value: { ...base, edsName: undefined, inline } };
    }
    throw invalid(what, `discovery type ${discoveryTypeName(type)} is not supported`);
  },
  deps(v) {
    return v.edsName ? [{ typeUrl: ENDPOINT, name: v.edsName }] : [];
  },
};

function discoveryTypeName(n: number): string {
  return Object.entries(Cluster_DiscoveryType).find(([, v]) => v === n)?.[0] ?? String(n);
}
