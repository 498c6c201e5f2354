// deno-lint-ignore-file no-console
/**
 * `deno task fuzz [--seconds N] [--target name] [--seed S]`: run every fuzz target (or one) for N
 * seconds each (default 10) and print executions and findings per target; exit 1 on a finding.
 */
import { fuzz } from "./engine.ts";
import { allTargets } from "./targets.ts";

const argv = [...Deno.args];
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const seconds = Number(flag("seconds") ?? 10);
const seed = Number(flag("seed") ?? Date.now() % 1_000_000);
const only = flag("target");
const targets = (await allTargets()).filter((t) => !only || t.name === only);
if (targets.length === 0) {
  console.error(`no such target "${only}"`);
  Deno.exit(2);
}
let found = 0;
console.log(`seed ${seed}, ${seconds} s per target`);
for (const t of targets) {
  const r = await fuzz(t, { seconds, seed });
  found += r.findings.length;
  console.log(
    `${r.target.padEnd(8)} ${String(r.executions).padStart(9)} executions  ` +
      `${(r.executions / r.seconds).toFixed(0).padStart(7)}/s  refused ${r.refused}  ` +
      `findings ${r.findings.length}  ` +
      `rss ${r.rssGrowthBytes >= 0 ? "+" : ""}${(r.rssGrowthBytes / 1048576).toFixed(1)} MB`,
  );
  for (const [i, f] of r.findings.entries()) {
    const file = `.weft/fuzz/${r.target}-${seed}-${i}.bin`;
    await Deno.mkdir(".weft/fuzz", { recursive: true });
    await Deno.writeFile(file, f.input);
    console.log(
      `  [${f.kind}] x${f.count} ${f.message}\n    input ${f.inputHex.slice(0, 160)}… (${file})`,
    );
  }
}
Deno.exit(found > 0 ? 1 : 0);
