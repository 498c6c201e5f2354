/**
 * A file: URL's local path, without node:url: on Bun, importing node:url costs ~2 MB of RSS
 * (measured with `bun -e`), which a node pays only when it loads the filter layer after start-up
 * (an xDS node taking its first L7 policy). POSIX paths only, as the node runs on Linux.
 */
export function filePathOf(url: string | URL): string {
  const u = new URL(url);
  if (u.protocol !== "file:") throw new TypeError(`not a file: URL: ${u.href}`);
  if (u.hostname !== "" && u.hostname !== "localhost") {
    throw new TypeError(`file: URL with a host: ${u.href}`);
  }
  if (/%2f/i.test(u.pathname)) throw new TypeError(`file: URL with an encoded '/': ${u.href}`);
  return decodeURIComponent(u.pathname);
}
