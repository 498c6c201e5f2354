/** A plain-text table for the demo's output. */
export type Row = Record<string, string>;

export function table(rows: readonly Row[]): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (vals: string[]) => "| " + vals.map((v, i) => v.padEnd(w[i]!)).join(" | ") + " |";
  return [
    line(cols),
    "|" + w.map((n) => "-".repeat(n + 2)).join("|") + "|",
    ...rows.map((r) => line(cols.map((c) => r[c] ?? ""))),
  ].join("\n");
}
