/**
 * Where the authz hook's time goes (issue #13): the same guest as served (sandbox-instrumented)
 * and uninstrumented, one rule class at a time, with the host calls each request makes.
 * Each figure is the min and median ns/op over 100 batches of 2000 calls (robust on a shared box).
 * Run: deno run -A plugins/authz/authz_breakdown.ts
 */
import { transpileBytes } from "@bytecodealliance/jco-transpile";
import { parseAllDocuments } from "yaml";
import { execFileSync } from "node:child_process";
import process from "node:process";
import {
  authorizationPolicyFromIstio,
  authzConfigFromPolicies,
} from "../../src/filters/first_party/mod.ts";
import { ComponentFilter } from "../../src/filters/mod.ts";
import type { HostBridge } from "../../src/filters/component/host_bridge.ts";
import { instrumentModule } from "../../src/filters/sandbox/instrument.ts";
import { instantiateDirect } from "../../src/filters/component/direct_abi.ts";
import type { LoadedComponent } from "../../src/filters/component/component_loader.ts";
import { pluginBytes } from "../_common/plugin_harness.ts";
import { AUTHZ_SOURCES } from "./build.ts";
import {
  BENCH_ALLOWED,
  BENCH_DENIED,
  BENCH_JWT_ALLOWED,
  BENCH_JWT_POLICIES,
  BENCH_POLICIES,
} from "./authz_bench_policies.ts";

let hostCalls = 0;

async function load(instrumented: boolean, count = false): Promise<LoadedComponent> {
  const bytes = await pluginBytes("authz", AUTHZ_SOURCES);
  const { files } = await transpileBytes(bytes, { name: "guest", instantiation: "async" });
  const core = files["guest.core.wasm"]!;
  const mod = await WebAssembly.compile(
    instrumented ? instrumentModule(core, { maxMemoryPages: 256 }) : core.slice(),
  );
  return {
    binding: "direct",
    sha256: "",
    instantiate: (b: HostBridge) =>
      Promise.resolve(instantiateDirect(mod, count ? counting(b) : b)),
  };
}

/** The bridge with every import counted (only for the host-call column). */
function counting(b: HostBridge): HostBridge {
  const proxy = Object.create(b) as HostBridge;
  for (const k of ["getHeader", "property", "setState", "log", "counter", "monotonicNs"] as const) {
    const orig = (b[k] as (...a: unknown[]) => unknown).bind(b);
    if (k === "property" || k === "counter") {
      (proxy as unknown as Record<string, unknown>)[k] = (...a: unknown[]) => {
        const inner = orig(...a) as (...x: unknown[]) => unknown;
        return (...x: unknown[]) => (hostCalls++, inner(...x));
      };
    } else {
      (proxy as unknown as Record<string, unknown>)[k] = (
        ...a: unknown[]
      ) => (hostCalls++, orig(...a));
    }
  }
  return proxy;
}

function cfgOf(yaml: string): unknown {
  if (yaml === "") return { policies: [] };
  return authzConfigFromPolicies(
    parseAllDocuments(yaml).map((d) => authorizationPolicyFromIstio(d.toJS())),
  );
}

function measure(fn: () => unknown, batch = 2000, rounds = 100): { min: number; med: number } {
  for (let i = 0; i < batch; i++) fn();
  const r: number[] = [];
  for (let k = 0; k < rounds; k++) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) fn();
    r.push((performance.now() - t0) * 1e6 / batch);
  }
  r.sort((a, b) => a - b);
  return { min: r[0]!, med: r[r.length >> 1]! };
}

const one = (rule: string) =>
  `metadata: {name: p, namespace: default}\nspec:\n  rules:\n  - ${rule}`;
const CLASSES: Record<string, string> = {
  "bench (10 rules, 3 policies)": BENCH_POLICIES,
  "no policies": "",
  "principals x3": one(
    `from: [{source: {principals: ["a/ns/b/sa/c", "cluster.local/ns/a/sa/x", "*/sa/batch"]}}]`,
  ),
  "namespaces x3": one(`from: [{source: {namespaces: ["b", "c", "d"]}}]`),
  "paths x3": one(`to: [{operation: {paths: ["/healthz", "/readyz", "/admin*"]}}]`),
  "methods x2": one(`to: [{operation: {methods: ["POST", "PUT"]}}]`),
  "when header x2": one(`when: [{key: "request.headers[x-tenant]", values: ["t1", "t2"]}]`),
  "ipBlocks": one(`from: [{source: {ipBlocks: ["192.168.0.0/16"]}}]`),
  "hosts+ports": one(`to: [{operation: {hosts: ["*.example.com"], ports: ["9090"]}}]`),
  "allow-all (continue)": one(`{}`),
  "jwt: requestPrincipals + list claim": BENCH_JWT_POLICIES,
};

const allowed = BENCH_ALLOWED;
const denied = BENCH_DENIED;

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const inst = await load(true);
const raw = await load(false);
const counted = await load(true, true);
const uptime = execFileSync("uptime").toString().trim();
say(`load: ${uptime}`);
say(
  "| config | request | outcome | host calls | instrumented min/med ns | raw min/med ns |",
);
say("|---|---|---|---|---|---|");
for (const [cls, yaml] of Object.entries(CLASSES)) {
  const cfg = cfgOf(yaml);
  const fi = await ComponentFilter.create(`i-${cls}`, "FAIL_CLOSE", inst, cfg);
  const fr = await ComponentFilter.create(`r-${cls}`, "FAIL_CLOSE", raw, cfg);
  const fc = await ComponentFilter.create(`c-${cls}`, "FAIL_CLOSE", counted, cfg);
  const ok = cls.startsWith("jwt") ? BENCH_JWT_ALLOWED : allowed;
  for (const [rl, rq] of [["allowed", ok], ["denied", denied]] as const) {
    hostCalls = 0;
    const out = fc.onRequest(rq) as { action: string };
    const calls = hostCalls;
    const a = measure(() => fi.onRequest(rq));
    const b = measure(() => fr.onRequest(rq));
    const f = (m: { min: number; med: number }) => `${m.min.toFixed(0)} / ${m.med.toFixed(0)}`;
    say(`| ${cls} | ${rl} | ${out.action} | ${calls} | ${f(a)} | ${f(b)} |`);
  }
}
