/**
 * Access to one instance's linear memory. Views are re-created when the memory grows (the old
 * ArrayBuffer detaches). Host → guest data goes through the guest's allocator
 * (`proxy_on_memory_allocate`, or the deprecated `malloc`) and ownership passes to the guest.
 */
import { decodeUtf8, Status } from "./abi.ts";

export class OutOfBounds extends Error {}

export class GuestMemory {
  private buf: ArrayBufferLike | undefined;
  private u8v: Uint8Array = new Uint8Array(0);
  private dv: DataView = new DataView(new ArrayBuffer(0));

  private memory: WebAssembly.Memory = new WebAssembly.Memory({ initial: 0 });
  private alloc: (size: number) => number = () => 0;

  /** Attach to the instance once it exists (host functions are built before it). */
  bind(memory: WebAssembly.Memory, alloc: (size: number) => number): void {
    this.memory = memory;
    this.alloc = alloc;
  }

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  private refresh(): void {
    const b = this.memory.buffer;
    if (b !== this.buf) {
      this.buf = b;
      this.u8v = new Uint8Array(b);
      this.dv = new DataView(b);
    }
  }

  bytes(): Uint8Array {
    this.refresh();
    return this.u8v;
  }

  private check(ptr: number, len: number): void {
    if (ptr < 0 || len < 0 || ptr + len > this.u8v.length) throw new OutOfBounds();
  }

  /** A copy of guest bytes (the guest may reuse its buffer after the call). */
  read(ptr: number, len: number): Uint8Array {
    ptr >>>= 0;
    len >>>= 0;
    this.refresh();
    if (len === 0) return new Uint8Array(0);
    this.check(ptr, len);
    return this.u8v.slice(ptr, ptr + len);
  }

  readString(ptr: number, len: number): string {
    ptr >>>= 0;
    len >>>= 0;
    if (len === 0) return "";
    this.refresh();
    this.check(ptr, len);
    return decodeUtf8(this.u8v, ptr, len);
  }

  u32(ptr: number): number {
    this.refresh();
    this.check(ptr >>> 0, 4);
    return this.dv.getUint32(ptr >>> 0, true);
  }

  setU32(ptr: number, v: number): void {
    this.refresh();
    this.check(ptr >>> 0, 4);
    this.dv.setUint32(ptr >>> 0, v >>> 0, true);
  }

  setU64(ptr: number, v: bigint): void {
    this.refresh();
    this.check(ptr >>> 0, 8);
    this.dv.setBigUint64(ptr >>> 0, BigInt.asUintN(64, v), true);
  }

  setU16(ptr: number, v: number): void {
    this.refresh();
    this.check(ptr >>> 0, 2);
    this.dv.setUint16(ptr >>> 0, v, true);
  }

  setU8(ptr: number, v: number): void {
    this.refresh();
    this.check(ptr >>> 0, 1);
    this.u8v[ptr >>> 0] = v;
  }

  /** memmove inside guest memory (Emscripten's emscripten_memcpy_big). */
  copyWithin(dest: number, src: number, len: number): void {
    this.refresh();
    this.check(dest, len);
    this.check(src, len);
    this.u8v.copyWithin(dest, src, src + len);
  }

  write(ptr: number, data: Uint8Array): void {
    this.refresh();
    this.check(ptr >>> 0, data.length);
    this.u8v.set(data, ptr >>> 0);
  }

  /**
   * Hand `data` to the guest: allocate, copy, write pointer and size into the return slots.
   * Empty data is pointer 0 and size 0 (SDKs read a null pointer as empty).
   */
  give(data: Uint8Array, retPtr: number, retLen: number): number {
    if (data.length === 0) {
      this.setU32(retPtr, 0);
      this.setU32(retLen, 0);
      return Status.OK;
    }
    const p = this.alloc(data.length) >>> 0;
    if (p === 0) return Status.INTERNAL_FAILURE;
    this.write(p, data);
    this.setU32(retPtr, p);
    this.setU32(retLen, data.length);
    return Status.OK;
  }
}

/** Run a host function body, turning an out-of-bounds guest pointer into the ABI status. */
export function guarded(fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    if (e instanceof OutOfBounds) return Status.INVALID_MEMORY_ACCESS;
    throw e;
  }
}
