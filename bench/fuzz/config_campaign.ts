// deno-lint-ignore-file no-console
/**
 * The config campaign of the live fuzzer: mutations of a valid weft.yaml and Istio YAML bundle
 * (types swapped, keys dropped or unknown, deep nesting, huge numbers, unicode, long strings,
 * repeated entries, alias bombs, byte mutations of the text).
 *  1. `weft run --config <mutated>` in a fresh process: it either starts (the mutation was valid:
 *     killed at once) or exits non-zero before printing "ready", naming problems, with no stack
 *     trace or unhandled error on stderr, within 20 s.
 *  2. The same mutations as live edits of a running node's weft.yaml: a refused edit keeps the last
 *     good config serving (a legitimate request works within 1 s); an accepted one is reverted.
 */
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { mutate, prng } from "../../tools/fuzz/engine.ts";
import { loopbackBlock, weftCommand } from "../../tests/support/weft_proc.ts";
import { createTestPki } from "../../tests/support/test_ca.ts";
import { fuzzConfig, startFuzzNode } from "./node.ts";

type Rand = () => number;
const int = (rand: Rand, n: number) => Math.floor(rand() * n);
const pick = <T>(rand: Rand, a: readonly T[]): T => a[int(rand, a.length)]!;

const ISTIO = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: default }
spec:
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"], methods: [GET] } }], from: [{ source: { principals: ["cluster.local/ns/default/sa/client"] } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web]
  http: [{ timeout: 5s, retries: { attempts: 2 }, route: [{ destination: { host: web } }] }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: p, namespace: default }
spec: { mtls: { mode: PERMISSIVE } }
`;

const VALUES: unknown[] = [
  null,
  -1,
  0,
  65536,
  1e308,
  -1e308,
  2 ** 53 + 1,
  "",
  "\u202e\u0000\ud800",
  "ünïcødé ☃",
  "x".repeat(100_000),
  [],
  {},
  true,
  "1s",
  "-5s",
  "999999999h",
  "127.0.0.1:0",
  "::",
  "spiffe://cluster.local/ns/a/sa/b",
];

/** A random path into `v` and a mutation at it (in place on a copy). */
function mutateTree(v: unknown, rand: Rand): unknown {
  const root = structuredClone(v) as Record<string, unknown>;
  let node: unknown = root;
  let parent: Record<string, unknown> | unknown[] | undefined;
  let key: string | number | undefined;
  for (let depth = int(rand, 6); depth > 0; depth--) {
    if (Array.isArray(node) && node.length) {
      parent = node;
      key = int(rand, node.length);
      node = node[key];
    } else if (node && typeof node === "object" && Object.keys(node).length) {
      const keys = Object.keys(node);
      parent = node as Record<string, unknown>;
      key = pick(rand, keys);
      node = (node as Record<string, unknown>)[key];
    } else break;
  }
  if (!parent || key === undefined) return root;
  const set = (x: unknown) => ((parent as Record<string | number, unknown>)[key!] = x);
  switch (int(rand, 6)) {
    case 0:
    case 1:
      set(structuredClone(pick(rand, VALUES)));
      break;
    case 2:
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
      break;
    case 3:
      if (!Array.isArray(parent)) {
        parent[pick(rand, ["unknownKey", "__proto__", "constructor", "x".repeat(300)])] = 1;
      }
      break;
    case 4: { // deep nesting
      let deep: unknown = node;
      for (let i = pick(rand, [10, 200, 3000]); i > 0; i--) {
        deep = rand() < 0.5 ? [deep] : { a: deep };
      }
      set(deep);
      break;
    }
    default: // repeated entries
      if (Array.isArray(node) && node.length) set(Array(pick(rand, [2, 100, 5000])).fill(node[0]));
      else set([node, node]);
  }
  return root;
}

const BOMB = `
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]
`;

function mutateText(text: string, rand: Rand): string {
  const r = rand();
  if (r < 0.55) {
    try {
      return stringify(mutateTree(parse(text), rand), { aliasDuplicateObjects: false });
    } catch {
      return text + "\n{";
    }
  }
  if (r < 0.65) return text + BOMB;
  if (r < 0.7) return "[".repeat(pick(rand, [500, 20_000])) + text;
  const dict = [
    "{",
    "}",
    "[",
    "]",
    ": ",
    "\n  - ",
    "&a ",
    "*a",
    "!!binary ",
    "!!js/function ",
    "~",
    "1e999",
    "\t",
    "\u0000",
    "<<: *a",
  ]
    .map((s) => new TextEncoder().encode(s));
  return new TextDecoder().decode(
    mutate(new TextEncoder().encode(text), rand, [], dict, 64 * 1024),
  );
}

const STACK = /^\s+at |Unhandled|uncaught|panic|RangeError|TypeError|SyntaxError: (?!.*problem)/m;

async function oneShot(
  text: string,
  istio: string,
  dir: string,
  bun: string | undefined,
): Promise<string | undefined> {
  await Deno.writeTextFile(join(dir, "istio", "bundle.yaml"), istio);
  await Deno.writeTextFile(join(dir, "weft.yaml"), text);
  const [prog, args] = weftCommand(["run", "--config", join(dir, "weft.yaml")], bun);
  const child = new Deno.Command("nice", {
    args: ["-n", "19", prog, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { WEFT_LOG: "info" },
  }).spawn();
  let out = "";
  let err = "";
  const dec = new TextDecoder();
  let ready = false;
  const readOut = (async () => {
    for await (const c of child.stdout) {
      out += dec.decode(c);
      if (!ready && out.includes('"msg":"ready"')) {
        ready = true;
        child.kill("SIGTERM");
      }
    }
  })();
  const readErr = (async () => {
    for await (const c of child.stderr) err += dec.decode(c);
  })();
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const status = await child.status;
  clearTimeout(timer);
  await Promise.all([readOut, readErr]);
  const all = out + err;
  if (STACK.test(all) || all.includes('"unhandled error"')) {
    return `stack trace / unhandled error:\n${all.slice(0, 1500)}`;
  }
  if (ready) return undefined;
  if (status.signal === "SIGKILL") return `no exit within 20 s`;
  if (status.code === 0) return `exit 0 without becoming ready`;
  if (!err.trim()) return `exit ${status.code} naming no problem`;
  return undefined;
}

export async function runConfigCampaign(
  opts: { seconds: number; seed: number; bun: string | undefined },
): Promise<number> {
  const rand = prng(opts.seed);
  const pki = await createTestPki();
  const dir = pki.dir;
  await Deno.mkdir(join(dir, "istio"));
  const valid = stringify(fuzzConfig(loopbackBlock(), pki, join(dir, "istio")));
  const findings: string[] = [];
  const end = performance.now() + opts.seconds * 1000 / 2;
  let runs = 0;
  console.log(`config: one-shot runs for ${opts.seconds / 2} s (seed ${opts.seed})`);
  while (performance.now() < end) {
    const which = rand() < 0.7;
    const text = which ? mutateText(valid, rand) : valid;
    const istio = which
      ? ISTIO
      : mutateText(ISTIO.split("---\n")[int(rand, 3)]!, rand) + "\n---\n" + ISTIO;
    const f = await oneShot(text, istio, dir, opts.bun);
    runs++;
    if (f) {
      const file = join(".weft/fuzz/live", `config-${opts.seed}-${runs}`);
      await Deno.mkdir(file, { recursive: true });
      await Deno.writeTextFile(join(file, "weft.yaml"), text);
      await Deno.writeTextFile(join(file, "bundle.yaml"), istio);
      findings.push(`${f.slice(0, 600)} (saved in ${file})`);
    }
  }
  console.log(`config one-shot: ${runs} runs (weft run --config), findings ${findings.length}`);
  // Live edits.
  const node = await startFuzzNode({ bun: opts.bun });
  const good = await Deno.readTextFile(node.configPath);
  const liveEnd = performance.now() + opts.seconds * 1000 / 2;
  let edits = 0;
  let refused = 0;
  const rss0 = node.rssBytes();
  let rss1 = rss0;
  try {
    while (performance.now() < liveEnd && node.alive()) {
      const text = mutateText(good, rand);
      const before = node.proc.lines.length;
      await Deno.writeTextFile(node.configPath, text);
      edits++;
      const rec = await node.proc.waitFor(
        (l) =>
          node.proc.lines.indexOf(l) >= before &&
          /config update|snapshot applied/.test(String(l.msg)),
        10_000,
      ).catch(() => undefined);
      if (rec && /rejected|failed/.test(String(rec.msg))) {
        refused++;
        const ms = await node.legit(1000);
        if (typeof ms === "string") findings.push(`after a refused live edit: ${ms}`);
      } else {
        // Accepted (or silent): put the good config back and wait until it serves again.
        await Deno.writeTextFile(node.configPath, good);
        await new Promise((r) => setTimeout(r, 600));
      }
      findings.push(...node.suspicious().filter((s) => !findings.includes(s)));
      if (!node.alive()) findings.push("weft exited after a live edit");
    }
    rss1 = node.rssBytes();
  } finally {
    await node.stop().catch((e) => findings.push(String(e)));
  }
  console.log(
    `config live edits: ${edits} edits, ${refused} refused, rss ${(rss0 / 1048576).toFixed(1)} → ` +
      `${(rss1 / 1048576).toFixed(1)} MB, findings ${findings.length}`,
  );
  for (const f of findings) console.log(`  FINDING: ${f}`);
  await pki.dispose();
  return findings.length;
}
