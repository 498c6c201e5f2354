/** Every resource type weft's xDS client accepts, by type URL. */
import { addressType } from "./address.ts";
import { authorizationType } from "./authorization.ts";
import { clusterType } from "./cluster.ts";
import { endpointType } from "./endpoint.ts";
import { extensionConfigType } from "./extension_config.ts";
import { listenerType } from "./listener.ts";
import type { ResourceType } from "./resource_type.ts";
import { routeType } from "./route.ts";

export const RESOURCE_TYPES: ReadonlyMap<string, ResourceType<unknown>> = new Map(
  ([
    listenerType,
    routeType,
    clusterType,
    endpointType,
    extensionConfigType,
    addressType,
    authorizationType,
  ] as ResourceType<unknown>[]).map((t) => [t.typeUrl, t]),
);
