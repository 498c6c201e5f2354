/** The admin page at / : the node at a glance, as tables (a person can look, not only read). */
import type { Readiness } from "./admin.ts";

const esc = (s: unknown): string =>
  String(s ?? "").replace(
    /[&<>"]/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]!,
  );

function table(title: string, rows: readonly Record<string, unknown>[]): string {
  if (rows.length === 0) return `<h2>${esc(title)}</h2><p class="none">none</p>`;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const head = cols.map((c) => `<th>${esc(c)}</th>`).join("");
  const body = rows.map((r) =>
    `<tr>${
      cols.map((c) => `<td>${esc(typeof r[c] === "object" ? JSON.stringify(r[c]) : r[c])}</td>`)
        .join("")
    }</tr>`
  ).join("");
  return `<h2>${
    esc(title)
  }</h2><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const asRows = (v: unknown): Record<string, unknown>[] =>
  Array.isArray(v) ? v.filter((x) => x && typeof x === "object") : [];

export function dashboardHtml(dump: Record<string, unknown>, ready: Readiness): string {
  const node = (dump.node ?? {}) as Record<string, unknown>;
  const sections = [
    table(
      "Workloads on this node",
      asRows(dump.workloads).map((w) => ({
        name: w.name,
        namespace: w.namespace,
        identity: w.identity,
        address: w.address,
        mtlsMode: w.mtlsMode,
      })),
    ),
    table(
      "Services",
      asRows(dump.services).map((s) => ({
        name: s.name,
        namespace: s.namespace,
        vips: s.vips,
        ports: s.ports,
        endpoints: Array.isArray(s.endpoints) ? s.endpoints.length : 0,
        inboundFilters: Array.isArray(s.inboundFilters)
          ? s.inboundFilters.map((f: { name: string }) => f.name)
          : [],
        outboundFilters: Array.isArray(s.outboundFilters)
          ? s.outboundFilters.map((f: { name: string }) => f.name)
          : [],
      })),
    ),
    table(
      "Authorization policies",
      asRows(dump.policies).map((p) => ({
        name: p.name,
        namespace: p.namespace,
        action: p.action,
        dryRun: p.dryRun,
        rules: Array.isArray(p.rules) ? p.rules.length : 0,
      })),
    ),
    table(
      "Certificates",
      asRows(dump.certificates).map((c) => ({
        identity: c.identity,
        state: c.state,
        serial: c.serial,
        notBefore: c.notBefore,
        notAfter: c.notAfter,
      })),
    ),
    table("Open connections", asRows(dump.connections)),
    table("Filters", asRows(dump.filters)),
  ];
  return `<!doctype html><html><head><meta charset="utf-8"><title>weft ${esc(node.name)}</title>
<meta http-equiv="refresh" content="5">
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}th{background:#f3f3f3}
.ok{color:#176f2c}.bad{color:#a11}.none{color:#888}code{background:#f3f3f3;padding:1px 4px}</style></head>
<body><h1>weft node <code>${esc(node.name)}</code></h1>
<p>Trust domain <code>${esc(node.trustDomain)}</code> · snapshot <code>${esc(dump.version)}</code> ·
<span class="${ready.ready ? "ok" : "bad"}">${
    ready.ready ? "ready" : "not ready: " + esc(ready.waitingFor.join(", "))
  }</span>
· <a href="/config_dump">config_dump</a> · metrics on :15020/stats/prometheus</p>
${sections.join("\n")}
</body></html>`;
}
