/**
 * bench/l4_heap.ts's node: bench/l4_node.ts (NodeProxy alone) on Bun, which on SIGUSR2 runs a full
 * collection and prints the JS heap (bun:jsc heapStats) to stderr: the first signal records the
 * baseline, each later one prints the object types that grew past 500 since then.
 * With WEFT_BENCH_CENSUS=1 (bench/l4_alloc.ts) signals alternate instead: the first collects and
 * records a census of every cell, the second prints `CENSUS {type: count}`, the cells allocated
 * since (garbage included: a census walks marked and unmarked cells; no collection in between).
 *   bun bench/l4_heap_node.ts <dir> a|b
 */
import process from "node:process";

interface HeapStats {
  heapSize: number;
  objectCount: number;
  objectTypeCounts: Record<string, number>;
}
const jsc = await import("bun:jsc") as unknown as { heapStats(): HeapStats };
const bun = (globalThis as unknown as { Bun: { gc(sync: boolean): void } }).Bun;
let base: HeapStats | undefined;
const census = process.env.WEFT_BENCH_CENSUS === "1";
process.on("SIGUSR2", () => {
  if (census) {
    if (!base) {
      bun.gc(true);
      base = jsc.heapStats();
      return;
    }
    const now = jsc.heapStats().objectTypeCounts;
    const diff = Object.entries(now).map(([k, v]) => [k, v - (base!.objectTypeCounts[k] ?? 0)])
      .filter(([, d]) => (d as number) > 0);
    base = undefined;
    process.stderr.write(`CENSUS ${JSON.stringify(Object.fromEntries(diff))}\n`);
    return;
  }
  bun.gc(true);
  const s = jsc.heapStats();
  if (!base) {
    base = s;
    process.stderr.write(
      `HEAPBASE ${JSON.stringify({ size: s.heapSize, objects: s.objectCount })}\n`,
    );
    return;
  }
  const grown = Object.entries(s.objectTypeCounts)
    .map(([k, v]) => [k, v - (base!.objectTypeCounts[k] ?? 0)] as const)
    .filter(([, d]) => d > 500).sort((x, y) => y[1] - x[1]);
  process.stderr.write(
    `HEAP ${JSON.stringify({ size: s.heapSize - base.heapSize, objects: s.objectCount, grown })}\n`,
  );
});
await import("./l4_node.ts");
