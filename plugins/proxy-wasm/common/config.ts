// Tiny JSON field reader shared by the AssemblyScript examples: assemblyscript 0.17 (the version
// @solo-io/proxy-runtime 0.1.8 builds with) has no JSON in its standard library, and the plugin
// configs are flat objects of strings.

/** The string value of `"key": "..."` in a flat JSON object, or `fallback` when absent. */
export function jsonString(
  json: string,
  key: string,
  fallback: string,
): string {
  const needle = '"' + key + '"';
  let i = json.indexOf(needle);
  if (i < 0) return fallback;
  i = json.indexOf(":", i + needle.length);
  if (i < 0) return fallback;
  const open = json.indexOf('"', i + 1);
  if (open < 0) return fallback;
  let out = "";
  let j = open + 1;
  while (j < json.length) {
    const c = json.charAt(j);
    if (c == '"') return out;
    if (c == "\\" && j + 1 < json.length) {
      j++;
      const e = json.charAt(j);
      if (e == "n") out += "\n";
      else if (e == "t") out += "\t";
      else if (e == "r") out += "\r";
      else out += e; // \" \\ \/ (\u escapes are not needed by these plugins)
    } else {
      out += c;
    }
    j++;
  }
  return fallback;
}
