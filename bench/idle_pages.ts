// deno-lint-ignore-file no-console
/**
 * Where an idle node's file pages lie: reads two `.pages` files that `deno task bench:idle --smaps
 * DIR` saves beside smaps (the resident pages of each file mapping, from /proc/PID/pagemap) and
 * prints the pages of the weft binary that OTHER has and BASE has not, by ELF section, and in the
 * `.bun` section (the bundle) by chunk: each chunk's source starts with `// @bun` and is named here
 * by its first exports.
 *   deno run -A bench/idle_pages.ts BASE.pages OTHER.pages
 * Read with care: a page fault on a file mapping also maps the neighbouring pages already in the
 * page cache (the kernel's fault-around, 64 KB), and read-around fills that cache, so a chunk never
 * evaluated can show resident pages next to one that was. Bun's executable from npm keeps only its
 * dynamic symbols, so `.text` pages are not named (the probe binaries in docs/MEASUREMENTS.md split
 * that part instead).
 */
const [basePath, otherPath] = Deno.args;
if (!basePath || !otherPath) {
  console.error("usage: idle_pages.ts BASE.pages OTHER.pages");
  Deno.exit(2);
}

interface Section {
  readonly name: string;
  readonly off: number;
  readonly size: number;
}

function sections(path: string): Section[] {
  const out = new Deno.Command("readelf", { args: ["-SW", path], stdout: "piped" }).outputSync();
  const list: Section[] = [];
  for (const l of new TextDecoder().decode(out.stdout).split("\n")) {
    const m = /\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(l);
    if (m) list.push({ name: m[1]!, off: parseInt(m[2]!, 16), size: parseInt(m[3]!, 16) });
  }
  return list.filter((s) => s.off > 0 && s.size > 0);
}

/** The resident page offsets of the most-mapped file (the weft binary). */
function readPages(path: string): { file: string; offs: Set<number> } {
  const byFile = new Map<string, Set<number>>();
  for (const l of Deno.readTextFileSync(path).split("\n")) {
    const [f, o] = l.split(" ");
    if (!f || !o) continue;
    let s = byFile.get(f);
    if (!s) byFile.set(f, s = new Set());
    s.add(parseInt(o, 16));
  }
  const [file, offs] = [...byFile].sort((a, b) => b[1].size - a[1].size)[0]!;
  return { file, offs };
}

const mb = (pages: number): string => (pages * 4 / 1024).toFixed(2);
const base = readPages(basePath);
const other = readPages(otherPath);
const secs = sections(other.file);
const only = [...other.offs].filter((o) => !base.offs.has(o));
const gone = [...base.offs].filter((o) => !other.offs.has(o));
console.log(
  `${other.file}: ${other.offs.size} pages against ${base.offs.size}: ` +
    `+${only.length} (${mb(only.length)} MB), -${gone.length} (${mb(gone.length)} MB)`,
);
const bySec = new Map<string, number>();
for (const o of only) {
  const n = secs.find((s) => o + 4096 > s.off && o < s.off + s.size)?.name ?? "(none)";
  bySec.set(n, (bySec.get(n) ?? 0) + 1);
}
for (const [n, c] of [...bySec].sort((a, b) => b[1] - a[1])) {
  console.log(`  ${n}: +${c} pages (${mb(c)} MB)`);
}

// The bundle's chunks in `.bun`: each starts with `// @bun` and ends at a NUL.
const bun = secs.find((s) => s.name === ".bun");
if (bun) {
  const f = Deno.openSync(other.file);
  const buf = new Uint8Array(bun.size);
  f.seekSync(bun.off, Deno.SeekMode.Start);
  for (let got = 0; got < buf.length;) {
    const n = f.readSync(buf.subarray(got));
    if (!n) break;
    got += n;
  }
  f.close();
  const marker = new TextEncoder().encode("// @bun");
  const dec = new TextDecoder();
  const rows: { kb: number; base: number; other: number; name: string }[] = [];
  for (let i = buf.indexOf(marker[0]!); i >= 0; i = buf.indexOf(marker[0]!, i + 1)) {
    if (!marker.every((b, k) => buf[i + k] === b)) continue;
    let end = buf.indexOf(0, i);
    if (end < 0) end = buf.length;
    const tail = dec.decode(buf.subarray(Math.max(i, end - 600), end));
    const exp = /export\{([^}]*)\}/.exec(tail)?.[1]?.split(",").slice(0, 4).join(",") ?? "";
    const lo = Math.floor((bun.off + i) / 4096) * 4096;
    let b = 0, o = 0;
    for (let p = lo; p < bun.off + end; p += 4096) {
      if (base.offs.has(p)) b++;
      if (other.offs.has(p)) o++;
    }
    if (end - i >= 4096) rows.push({ kb: (end - i) / 1024, base: b * 4, other: o * 4, name: exp });
    i = end;
  }
  console.log(
    "\n.bun chunks of 4 KB or more: size KB, resident KB in BASE and OTHER, first exports",
  );
  for (const r of rows.sort((a, b) => b.kb - a.kb)) {
    console.log(
      `  ${r.kb.toFixed(1).padStart(7)} ${String(r.base).padStart(5)} ${
        String(r.other).padStart(5)
      }  ${r.name.slice(0, 90)}`,
    );
  }
}
