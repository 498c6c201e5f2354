/**
 * JSC's jitdump files (BUN_JSC_useJITDump=1) as perf maps: `deno run -A bench/l4_jitmap.ts DIR`
 * writes /tmp/perf-<pid>.map for each DIR/jit-<tid>-<pid>.dump, so `perf report` names the JIT
 * code of a Bun process (`perf inject --jit` expects jit-<pid>.dump and skips these names). JSC
 * reuses the memory of code it freed: a later record replaces the earlier ones it overlaps, so
 * the map names what ran last at each address (start-up code such as the YAML parser otherwise
 * shows up in steady-state profiles).
 * jitdump format: linux tools/perf/Documentation/jitdump-specification.txt.
 */
const dir = Deno.args[0] ?? ".";
const maps = new Map<number, string[]>();
for (const e of Deno.readDirSync(dir)) {
  const m = /^jit-\d+-(\d+)\.dump$/.exec(e.name) ?? /^jit-(\d+)\.dump$/.exec(e.name);
  if (!m) continue;
  const pid = Number(m[1]);
  const buf = Deno.readFileSync(`${dir}/${e.name}`);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = v.getUint32(8, true); // header total_size
  const ranges: { start: bigint; end: bigint; name: string }[] = [];
  while (off + 16 <= buf.length) {
    const id = v.getUint32(off, true);
    const size = v.getUint32(off + 4, true);
    if (size < 16 || off + size > buf.length) break;
    if (id === 0) { // JIT_CODE_LOAD
      const codeAddr = v.getBigUint64(off + 16 + 16, true);
      const codeSize = v.getBigUint64(off + 16 + 24, true);
      const nameAt = off + 16 + 40;
      let end = nameAt;
      while (end < off + size && buf[end] !== 0) end++;
      const name = new TextDecoder().decode(buf.subarray(nameAt, end));
      const stop = codeAddr + codeSize;
      for (let i = ranges.length - 1; i >= 0; i--) {
        const r = ranges[i]!;
        if (r.start < stop && codeAddr < r.end) ranges.splice(i, 1);
      }
      ranges.push({ start: codeAddr, end: stop, name });
    }
    off += size;
  }
  const lines = maps.get(pid) ?? [];
  for (const r of ranges) {
    lines.push(`${r.start.toString(16)} ${(r.end - r.start).toString(16)} ${r.name}`);
  }
  maps.set(pid, lines);
}
for (const [pid, lines] of maps) {
  Deno.writeTextFileSync(`/tmp/perf-${pid}.map`, lines.join("\n") + "\n");
  Deno.stdout.writeSync(
    new TextEncoder().encode(`/tmp/perf-${pid}.map: ${lines.length} symbols\n`),
  );
}
