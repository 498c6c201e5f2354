/**
 * weft's entry in the node's primary CNI network config, as pure JSON edits (no I/O): which file
 * the runtime reads (libcni's ConfFiles: `.conf`, `.conflist`, `.json`, first by name), a single
 * `.conf` turned into a `.conflist`, weft chained last (after the primary plugin and any other
 * chained ones, as istio-cni's install-cni does), and taken out again. Every other plugin and
 * every unknown field stays as it was; a second install replaces weft's entry, never duplicates it.
 */

/** The extensions libcni (and so containerd and CRI-O) loads network configs from. */
export const CNI_CONF_EXTENSIONS: readonly string[] = [".conf", ".conflist", ".json"];

type Json = Record<string, unknown>;

/** weft's chained entry: the plugin's binary name in the CNI bin dir and the agent's socket. */
export interface WeftCniEntry {
  readonly type: string;
  readonly zdsSocket: string;
}

export type ConflistEdit =
  | {
    readonly ok: true;
    readonly conflist: Json;
    readonly converted: boolean;
    readonly replaced: number;
  }
  | { readonly ok: false; readonly problems: readonly string[] };

/** The file a CNI runtime uses from `names` (a directory listing): the first by byte order. */
export function primaryConfFile(names: readonly string[]): string | undefined {
  return names
    .filter((n) => !n.startsWith(".") && CNI_CONF_EXTENSIONS.some((e) => n.endsWith(e)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[0];
}

/** The name a converted single-plugin file gets (istio-cni: `10-x.conf` → `10-x.conflist`). */
export function conflistName(file: string): string {
  return file.endsWith(".conflist") ? file : file.replace(/\.(conf|json)$/, "") + ".conflist";
}

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function pluginsOf(raw: Json, file: string, problems: string[]): Json[] {
  if (!Array.isArray(raw.plugins)) {
    problems.push(`${file}: plugins: must be a list of plugin objects`);
    return [];
  }
  raw.plugins.forEach((p, i) => {
    if (!isObject(p)) problems.push(`${file}: plugins[${i}]: must be an object`);
    else if (typeof p.type !== "string" || p.type === "") {
      problems.push(`${file}: plugins[${i}].type: must be a non-empty string`);
    }
  });
  return raw.plugins.filter(isObject);
}

/**
 * `raw` (a parsed network config from `file`) with weft chained last. `supported` are the
 * cniVersions weft's plugin answers: the runtime hands the list's version to every plugin, so a
 * list weft cannot serve would fail every pod's ADD on the node — refused here instead.
 */
export function chainWeft(
  raw: unknown,
  file: string,
  entry: WeftCniEntry,
  supported: readonly string[],
): ConflistEdit {
  if (!isObject(raw)) return { ok: false, problems: [`${file}: must be a JSON object`] };
  const problems: string[] = [];
  const converted = !("plugins" in raw);
  if (converted && (typeof raw.type !== "string" || raw.type === "")) {
    problems.push(`${file}: type: must be a non-empty string (a .conf names one plugin)`);
  }
  // A single-plugin config becomes a list holding it unchanged (libcni copies name and
  // cniVersion into each plugin's config when it runs a list).
  const list: Json = converted
    ? { cniVersion: raw.cniVersion, name: raw.name, plugins: [raw] }
    : { ...raw };
  if (typeof list.name !== "string" || list.name === "") {
    problems.push(`${file}: name: must be a non-empty string`);
  }
  const version = list.cniVersion;
  if (typeof version !== "string" || !supported.includes(version)) {
    problems.push(
      `${file}: cniVersion: weft's plugin supports ${supported.join(", ")}, got ${
        JSON.stringify(version)
      }`,
    );
  }
  const plugins = converted ? [raw] : pluginsOf(list, file, problems);
  const others = plugins.filter((p) => p.type !== entry.type);
  if (problems.length === 0 && others.length === 0) {
    problems.push(`${file}: plugins: no primary plugin to chain after (only weft's own entry)`);
  }
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    conflist: { ...list, plugins: [...others, { type: entry.type, zdsSocket: entry.zdsSocket }] },
    converted,
    replaced: plugins.length - others.length,
  };
}

/** `raw` without weft's entries (`removed` = how many); a file that is not a list has none. */
export function unchainWeft(
  raw: unknown,
  file: string,
  type: string,
): { ok: true; conflist: unknown; removed: number } | { ok: false; problems: string[] } {
  if (!isObject(raw)) return { ok: false, problems: [`${file}: must be a JSON object`] };
  if (!("plugins" in raw)) return { ok: true, conflist: raw, removed: 0 };
  const problems: string[] = [];
  const plugins = pluginsOf(raw, file, problems);
  if (problems.length > 0) return { ok: false, problems };
  const kept = plugins.filter((p) => p.type !== type);
  return { ok: true, conflist: { ...raw, plugins: kept }, removed: plugins.length - kept.length };
}
