import assert from "node:assert/strict";
import { Reader, walkExpr } from "./wasm_binary.ts";

function walk(bytes: number[]): { calls: number[][]; loops: number[]; end: number } {
  const calls: number[][] = [];
  const loops: number[] = [];
  const r = new Reader(Uint8Array.from(bytes));
  walkExpr(r, {
    funcIndex: (start, end, index) => calls.push([start, end, index]),
    loopBody: (pos) => loops.push(pos),
  });
  return { calls, loops, end: r.pos };
}

Deno.test("walkExpr: inline and general paths report the same positions as the encoding", () => {
  const body = [
    0x41,
    0xff,
    0xff,
    0xff,
    0xff,
    0x0f, // i32.const, 5-byte LEB
    0x10,
    0x85,
    0x80,
    0x80,
    0x80,
    0x00, // call 5, padded LEB
    0x03,
    0x40, // loop (empty block type)
    0x28,
    0x02,
    0x00, // i32.load align 2 offset 0 (one-byte align)
    0x28,
    0x42,
    0x00,
    0x04, // i32.load with a memory index (multi-memory: general path)
    0x0e,
    0x02,
    0x00,
    0x01,
    0x00, // br_table (general path)
    0x0b, // end loop
    0x02,
    0x63,
    0x00, // block with a (ref null 0) type
    0xd2,
    0x07, // ref.func 7
    0x1a, // drop
    0x0b, // end block
    0x0b, // end of body
  ];
  assert.deepEqual(walk(body), { calls: [[7, 12, 5], [31, 32, 7]], loops: [14], end: body.length });
  // Bytes after the final end are not read.
  assert.equal(walk([0x0b, 0xff, 0xff]).end, 1);
});

Deno.test("walkExpr: malformed bodies are refused", () => {
  const refuses = (bytes: number[], re: RegExp) => assert.throws(() => walk(bytes), re);
  refuses([0x41, 0x80, 0x80], /unexpected end/); // LEB cut short
  refuses([0x41, ...Array(10).fill(0x80), 0x00, 0x0b], /too long/);
  refuses([0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b], /too long/);
  refuses([0x03, 0x40, 0x0b], /unexpected end/); // no final end
  refuses([0xc5, 0x0b], /unknown opcode 0xc5/);
  refuses([0xfb, 0x00, 0x0b], /GC instructions/);
});
