/**
 * Bun's native TCP sockets (`Bun.listen` / `Bun.connect`) behind the part of node:stream's Duplex
 * the L7 proxy uses (HTTP/1 codec, body copy, h2c session): `data`/`end`/`error`/`close`/`drain`
 * events, `write` with backpressure, `end` as a half-close, `destroy`, `pause`/`resume`,
 * `cork`/`uncork`, `setNoDelay`, `setTimeout`. On Bun, node:net is a compatibility layer with
 * stream machinery over these same sockets; going native saves that layer per read and write
 * (bench/l7/socket_floor.ts measures it). Deno keeps node:net: `nativeSockets` is false there and
 * callers use node:net instead.
 *
 * Semantics kept from node:net (allowHalfOpen: true): a peer's FIN is `end` and the socket stays
 * writable until `end()`; `end()` sends FIN after every queued byte; `close` comes once, after
 * both sides are done or on `destroy()`/error. A write the kernel takes only in part is queued
 * and sent on Bun's `drain`; `write()` returns false once HIGH_WATER bytes are queued and `drain`
 * follows when the queue empties. Errors go to `error` listeners (counted in
 * weft_native_socket_errors_total); without a listener they are counted and dropped, never
 * thrown: nothing a peer does may end the process.
 */
import { EventEmitter } from "node:events";
import { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import { metrics } from "./metrics.ts";
import { errorMessage, WeftError } from "./errors.ts";

// deno-lint-ignore no-explicit-any
const Bun = (globalThis as any).Bun;

/** Whether this runtime has native sockets the L7 proxy uses (Bun). */
export const nativeSockets: boolean = typeof Bun?.listen === "function";

const HIGH_WATER = 64 * 1024;

function unref(t: unknown): void {
  (t as { unref?: () => void }).unref?.();
}

const socketErrors = metrics.counter(
  "weft_native_socket_errors_total",
  "Errors on native (Bun) sockets of the L7 proxy, per connection",
  ["kind"],
);

/** The native socket's calls this file makes (Bun's `Socket`). */
interface BunSocket {
  data: NativeSocket | undefined;
  write(b: Uint8Array): number;
  shutdown(): void;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(on: boolean): boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

/** A native socket as a Duplex-shaped event emitter (see the file comment). */
export class NativeSocket extends EventEmitter {
  destroyed = false;
  writableEnded = false;
  readableEnded = false;
  writableNeedDrain = false;
  /** FIN sent after end() and every queued byte (node:net's `finish`). */
  writableFinished = false;
  bytesRead = 0;
  bytesWritten = 0;
  private sock: BunSocket | undefined;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private corked = 0;
  private paused = false;
  private closeEmitted = false;
  private shutDown = false;
  private errored = false;
  private idleMs = 0;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private lastActive = 0;

  /** @internal Bound by listenNative/connectNative. */
  attach(sock: BunSocket): void {
    this.sock = sock;
    sock.data = this;
    if (this.paused) sock.pause();
    this.flush();
  }

  get writableLength(): number {
    return this.queued;
  }
  get remoteAddress(): string | undefined {
    return this.sock?.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.sock?.remotePort;
  }
  get localAddress(): string | undefined {
    return this.sock?.localAddress;
  }
  get localPort(): number | undefined {
    return this.sock?.localPort;
  }

  write(chunk: Uint8Array | string, cb?: (err?: Error | null) => void): boolean {
    if (this.destroyed || this.writableEnded) {
      socketErrors.inc({ kind: "write_after_end" });
      if (cb) queueMicrotask(() => cb(new Error("Cannot write: the socket is closed")));
      return false;
    }
    const b = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (this.idleMs > 0) this.touch();
    if (b.length > 0) {
      if (this.queued > 0 || this.corked > 0 || !this.sock) this.enqueue(b);
      else {
        const n = Math.max(0, this.sock.write(b));
        this.bytesWritten += n;
        if (n < b.length) this.enqueue(b.subarray(n));
      }
    }
    if (cb) queueMicrotask(() => cb(null));
    if (this.queued >= HIGH_WATER) {
      this.writableNeedDrain = true;
      return false;
    }
    return true;
  }

  private enqueue(b: Uint8Array): void {
    this.queue.push(b);
    this.queued += b.length;
  }

  /** Sends what is queued, as far as the kernel takes it; FIN once empty after end(). */
  private flush(): void {
    const s = this.sock;
    if (!s || this.destroyed || this.corked > 0) return;
    while (this.queue.length > 0) {
      const head = this.queue.length > 1 ? Buffer.concat(this.queue) : this.queue[0]!;
      const n = Math.max(0, s.write(head));
      this.bytesWritten += n;
      this.queued -= n;
      this.queue = n < head.length ? [head.subarray(n)] : [];
      if (n < head.length) return;
    }
    if (this.writableEnded && !this.shutDown) {
      this.shutDown = true;
      if (this.readableEnded) s.end();
      else s.shutdown();
      this.writableFinished = true;
      this.emit("finish");
    }
    if (this.writableNeedDrain) {
      this.writableNeedDrain = false;
      this.emit("drain");
    }
  }

  cork(): void {
    this.corked++;
  }

  uncork(): void {
    if (this.corked > 0 && --this.corked === 0) this.flush();
  }

  /** Half-close: FIN after the queued bytes; reading goes on until the peer's FIN. */
  end(chunk?: Uint8Array | string, cb?: () => void): this {
    if (chunk !== undefined) this.write(chunk);
    if (cb) this.once("close", cb);
    if (this.writableEnded || this.destroyed) return this;
    this.writableEnded = true;
    this.flush();
    return this;
  }

  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.queue = [];
    this.queued = 0;
    const s = this.sock;
    if (s) s.data = undefined; // its close handler would emit `close` before `error`
    s?.terminate();
    queueMicrotask(() => {
      if (err) this.fail(err, "destroyed");
      this.emitClose();
    });
    return this;
  }

  pause(): this {
    this.paused = true;
    this.sock?.pause();
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    this.sock?.resume();
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  setNoDelay(on = true): this {
    this.sock?.setNoDelay(on);
    return this;
  }

  /** Idle timeout: `timeout` once after `ms` without reads or writes, again after the next idle
   * period (node:net's). A JS timer checked at expiry (Bun's own socket timeouts tick every few
   * seconds); activity only stamps the time. 0 turns it off. */
  setTimeout(ms: number, cb?: () => void): this {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.idleMs = ms > 0 ? ms : 0;
    if (this.idleMs > 0) this.touch();
    if (cb) this.once("timeout", cb);
    return this;
  }

  private touch(): void {
    this.lastActive = performance.now();
    if (this.idleTimer === undefined && !this.destroyed) {
      this.idleTimer = setTimeout(() => this.idleCheck(), this.idleMs);
      unref(this.idleTimer); // as node:net's: an idle socket's timer keeps no process alive
    }
  }

  private idleCheck(): void {
    this.idleTimer = undefined;
    if (this.idleMs === 0 || this.destroyed) return;
    const idle = performance.now() - this.lastActive;
    if (idle + 1 < this.idleMs) {
      this.idleTimer = setTimeout(() => this.idleCheck(), this.idleMs - idle);
      unref(this.idleTimer);
      return;
    }
    this.emit("timeout"); // re-armed by the next read or write
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /** @internal From Bun's handlers. */
  onData(b: Uint8Array): void {
    this.bytesRead += b.length;
    if (this.idleMs > 0) this.touch();
    if (!this.destroyed) this.emit("data", b);
  }

  /** @internal */
  onEnd(): void {
    if (this.readableEnded || this.destroyed) return;
    this.readableEnded = true;
    this.emit("end");
    // Both sides done: Bun closes the socket on its own; node:net would too.
    if (this.shutDown) this.sock?.end();
  }

  /** @internal */
  onDrain(): void {
    this.flush();
  }

  /** @internal */
  onClose(err?: Error): void {
    if (err) this.fail(err, "socket");
    if (!this.destroyed) {
      this.destroyed = true;
      if (!this.readableEnded) {
        this.readableEnded = true;
        // A reset is not an end of stream: node:net emits only `error` and `close` then.
        if (!this.errored) this.emit("end");
      }
    }
    this.emitClose();
  }

  /** @internal */
  fail(err: Error, kind: string): void {
    this.errored = true;
    socketErrors.inc({ kind });
    if (this.listenerCount("error") > 0) this.emit("error", err);
  }

  private emitClose(): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    clearTimeout(this.idleTimer);
    this.sock = undefined;
    this.emit("close", false);
  }

  /** This socket as the Duplex the L7 code takes (it uses only what this class implements). */
  asDuplex(): Duplex {
    return this as unknown as Duplex;
  }
}

const handlers = {
  open(_s: BunSocket): void {},
  data(s: BunSocket, b: Uint8Array): void {
    s.data?.onData(b);
  },
  end(s: BunSocket): void {
    s.data?.onEnd();
  },
  drain(s: BunSocket): void {
    s.data?.onDrain();
  },
  close(s: BunSocket, err?: Error): void {
    s.data?.onClose(err);
  },
  error(s: BunSocket, err: Error): void {
    s.data?.fail(err, "error");
  },
  connectError(s: BunSocket, err: Error): void {
    s.data?.onClose(err);
  },
};

export interface NativeListener {
  readonly port: number;
  /** Stops accepting; open connections are closed too only with `closeConnections`. */
  close(closeConnections?: boolean): void;
}

/** A native TCP listener (Bun only); `onConnection` gets each accepted socket, paused when
 * `pauseOnConnect` (node:net's option: the handler resumes it). Throws when it cannot bind. */
export function listenNative(
  hostname: string,
  port: number,
  onConnection: (s: NativeSocket) => void,
  opts: { readonly pauseOnConnect?: boolean } = {},
): NativeListener {
  if (!nativeSockets) throw new Error("Cannot listen natively: not on Bun");
  const server = Bun.listen({
    hostname,
    port,
    allowHalfOpen: true,
    socket: {
      ...handlers,
      open(s: BunSocket): void {
        const n = new NativeSocket();
        if (opts.pauseOnConnect) n.pause();
        n.attach(s);
        s.setNoDelay(true);
        onConnection(n);
      },
    },
  });
  return {
    port: server.port as number,
    close: (closeConnections = true) => server.stop(closeConnections),
  };
}

/** A native TCP connection (Bun only), resolved once connected; rejects on a failed connect or
 * after `timeoutMs`. */
export function connectNative(host: string, port: number, timeoutMs = 0): Promise<NativeSocket> {
  if (!nativeSockets) return Promise.reject(new Error("Cannot connect natively: not on Bun"));
  const n = new NativeSocket();
  return new Promise<NativeSocket>((resolve, reject) => {
    const timer = timeoutMs > 0
      ? setTimeout(() => {
        n.destroy();
        reject(
          new WeftError(
            "connect_timeout",
            `Cannot connect to ${host}:${port}: timed out after ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs)
      : undefined;
    Bun.connect({
      hostname: host,
      port,
      allowHalfOpen: true,
      socket: {
        ...handlers,
        open(s: BunSocket): void {
          clearTimeout(timer);
          if (n.destroyed) return s.terminate();
          s.setNoDelay(true);
          n.attach(s);
          resolve(n);
        },
      },
    }).catch((e: unknown) => {
      clearTimeout(timer);
      n.onClose();
      reject(
        new WeftError("connect_failed", `Cannot connect to ${host}:${port}: ${errorMessage(e)}`, {
          cause: e,
        }),
      );
    });
  });
}
