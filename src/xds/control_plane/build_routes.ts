/** Mesh services → per-port HTTP pieces: RouteConfiguration (VirtualService http routes as
 * weighted clusters), the HTTPFault filter and WasmPlugin ECDS configs. */
import { create } from "@bufbuild/protobuf";
import { type Any, anyPack, DurationSchema, StringValueSchema } from "@bufbuild/protobuf/wkt";
import {
  HTTPFaultSchema,
  type RouteConfiguration,
  RouteConfigurationSchema,
  TypedExtensionConfigSchema,
  WasmSchema,
} from "../proto.ts";
import { COMPONENT_RUNTIME } from "../resources/http_filters.ts";
import type { MeshPlugin, MeshService } from "./mesh.ts";

export function clusterName(s: MeshService, port: number, subset = ""): string {
  return `outbound|${port}|${subset}|${s.hostname}`;
}

export function listenerName(s: MeshService, port: number): string {
  return `${s.hostname}:${port}`;
}

export function routeConfig(s: MeshService, port: number): RouteConfiguration {
  const rules = s.http.length
    ? s.http
    : [{ match: undefined, route: [{ subset: undefined, weight: 1 }], fault: undefined }];
  const domains = [
    s.hostname,
    `${s.hostname}:${port}`,
    ...s.vips,
    ...s.vips.map((v) => `${v}:${port}`),
  ];
  return create(RouteConfigurationSchema, {
    name: listenerName(s, port),
    virtualHosts: [{
      name: listenerName(s, port),
      domains,
      routes: rules.map((r) => ({
        // Per-route override too (Istio's shape), so a fault change is also an RDS change, which
        // is what gRPC clients re-read filter configs on.
        typedPerFilterConfig: r.fault ? { "envoy.filters.http.fault": faultAny(r.fault)! } : {},
        match: {
          pathSpecifier: r.match?.exact !== undefined
            ? { case: "path" as const, value: r.match.exact }
            : { case: "prefix" as const, value: r.match?.prefix ?? "/" },
          headers: Object.entries(r.match?.headers ?? {}).map(([name, h]) => ({
            name,
            headerMatchSpecifier: {
              case: "stringMatch" as const,
              value: {
                matchPattern: h.exact !== undefined
                  ? { case: "exact" as const, value: h.exact }
                  : h.prefix !== undefined
                  ? { case: "prefix" as const, value: h.prefix }
                  : { case: "safeRegex" as const, value: { regex: h.regex ?? "" } },
              },
            },
          })),
        },
        action: {
          case: "route" as const,
          value: {
            clusterSpecifier: r.route.length === 1
              ? { case: "cluster" as const, value: clusterName(s, port, r.route[0]!.subset) }
              : {
                case: "weightedClusters" as const,
                value: {
                  clusters: r.route.map((d) => ({
                    name: clusterName(s, port, d.subset),
                    weight: d.weight,
                  })),
                },
              },
          },
        },
      })),
    }],
  });
}

function percent(v: unknown): { numerator: number; denominator: number } {
  const value = typeof v === "object" && v ? Number((v as { value?: unknown }).value ?? 100) : 100;
  return { numerator: Math.round(value * 10_000), denominator: 2 }; // MILLION
}

function durationOf(text: unknown): { seconds: bigint; nanos: number } {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(String(text ?? "0s"));
  const ms = m ? Number(m[1]) * (m[2] === "s" ? 1000 : 1) : 0;
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

/** VirtualService `fault` (first rule that has one) → HTTPFault, or undefined. */
export function faultFilter(s: MeshService): Any | undefined {
  return faultAny(s.http.find((r) => r.fault)?.fault);
}

function faultAny(raw: unknown): Any | undefined {
  const f = raw as Record<string, Record<string, unknown>> | undefined;
  if (!f) return undefined;
  const fault = create(HTTPFaultSchema, {
    abort: f.abort
      ? {
        errorType: f.abort.grpcStatus !== undefined
          ? { case: "grpcStatus", value: Number(f.abort.grpcStatus) }
          : { case: "httpStatus", value: Number(f.abort.httpStatus ?? 503) },
        percentage: percent(f.abort.percentage),
      }
      : undefined,
    delay: f.delay
      ? {
        faultDelaySecifier: {
          case: "fixedDelay",
          value: create(DurationSchema, durationOf(f.delay.fixedDelay)),
        },
        percentage: percent(f.delay.percentage),
      }
      : undefined,
  });
  return anyPack(HTTPFaultSchema, fault);
}

export function pluginResourceName(s: MeshService, p: MeshPlugin): string {
  return `extensions.istio.io/wasmplugin/${s.namespace}.${p.name}`;
}

const PHASES = ["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED"];

/** WasmPlugin order: phase, then higher priority first, then name (l7-semantics W7/W8). */
export function orderedPlugins(s: MeshService): MeshPlugin[] {
  return [...s.plugins].sort((a, b) =>
    PHASES.indexOf(a.phase) - PHASES.indexOf(b.phase) || b.priority - a.priority ||
    a.name.localeCompare(b.name)
  );
}

/** Istio's ECDS shape for a WasmPlugin (xds.md §14). */
export function pluginExtension(s: MeshService, p: MeshPlugin): Any {
  const wasm = create(WasmSchema, {
    config: {
      name: `${s.namespace}.${p.name}`,
      rootId: p.name,
      failOpen: p.failStrategy === "FAIL_OPEN",
      configuration: anyPack(
        StringValueSchema,
        create(StringValueSchema, {
          value: JSON.stringify(p.pluginConfig),
        }),
      ),
      vm: {
        case: "vmConfig",
        value: {
          runtime: p.type === "component" ? COMPONENT_RUNTIME : "envoy.wasm.runtime.v8",
          code: {
            specifier: {
              case: "remote",
              value: {
                httpUri: { uri: p.url, httpUpstreamType: { case: "cluster", value: "_" } },
                sha256: p.sha256 ?? "",
              },
            },
          },
        },
      },
    },
  });
  return anyPack(
    TypedExtensionConfigSchema,
    create(TypedExtensionConfigSchema, {
      name: pluginResourceName(s, p),
      typedConfig: anyPack(WasmSchema, wasm),
    }),
  );
}
