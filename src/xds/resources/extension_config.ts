/** ECDS: a TypedExtensionConfig names one HTTP filter config, resolved into a FilterRef. */
import type { Any } from "@bufbuild/protobuf/wkt";
import type { FilterRef } from "../../core/mod.ts";
import { decodeTypedExtensionConfig, TYPE_NAMES, unpackAs } from "../node_proto.ts";
import { EXTENSION_CONFIG } from "../type_urls.ts";
import { filterFromAny, innerTypeUrl } from "./http_filters.ts";
import { type Decoded, invalid, type ResourceType } from "./resource_type.ts";

export interface ExtensionValue {
  /** undefined: the router (allowed, a no-op in the chain). */
  readonly ref: FilterRef | undefined;
  /** The config's type (through TypedStruct), checked against the listener's `type_urls`. */
  readonly typeUrl: string;
}

export const extensionConfigType: ResourceType<ExtensionValue> = {
  typeUrl: EXTENSION_CONFIG,
  decode(any: Any): Decoded<ExtensionValue> {
    const t = unpackAs(any, TYPE_NAMES.extensionConfig, decodeTypedExtensionConfig);
    if (!t.name) throw invalid("extension config", "name is empty");
    if (!t.typedConfig) throw invalid(`extension config ${t.name}`, "typed_config is missing");
    const spec = filterFromAny(t.name, t.typedConfig);
    return {
      name: t.name,
      value: {
        ref: spec.kind === "filter" ? spec.ref : undefined,
        typeUrl: innerTypeUrl(t.typedConfig),
      },
    };
  },
  deps: () => [],
};
