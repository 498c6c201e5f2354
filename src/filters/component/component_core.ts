/**
 * Reads the top-level core modules out of a component binary without jco, so a C-SDK-shaped
 * guest (driven directly, direct_abi.ts) loads without evaluating jco-transpile and its WASI shim
 * (preview2-shim starts a worker thread, ~37 MB of RSS, at import). Only the section framing of
 * the component binary format is read (WebAssembly component-model Binary.md: preamble
 * `\0asm 0d 00 01 00`, then sections `id:u8 size:u32(LEB128) contents`; id 1 is a core module);
 * anything else a loader needs is left to jco.
 */

const PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const CORE_MODULE_SECTION = 1;
/** Component section ids 0 (custom) to 11 (export). */
const MAX_SECTION_ID = 11;

/**
 * The top-level core modules of a component, in section order (jco names them `<name>.core.wasm`,
 * `<name>.core2.wasm`, ... in the same order). Undefined when `bytes` is not a well-framed
 * component: the caller then lets jco read it and report what is wrong.
 */
export function coreModules(bytes: Uint8Array): Uint8Array[] | undefined {
  if (bytes.length < PREAMBLE.length || PREAMBLE.some((b, i) => bytes[i] !== b)) return undefined;
  const out: Uint8Array[] = [];
  let at = PREAMBLE.length;
  while (at < bytes.length) {
    const id = bytes[at++]!;
    if (id > MAX_SECTION_ID) return undefined;
    const size = readU32(bytes, at);
    if (!size) return undefined;
    at = size.next;
    const end = at + size.value;
    if (end > bytes.length) return undefined;
    if (id === CORE_MODULE_SECTION) out.push(bytes.subarray(at, end));
    at = end;
  }
  return out;
}

function readU32(bytes: Uint8Array, at: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    const b = bytes[at++];
    if (b === undefined) return undefined;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return value <= 0xffff_ffff ? { value, next: at } : undefined;
  }
  return undefined;
}
