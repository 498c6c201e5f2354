/** Assertions for Deno.test: node:assert/strict (JSR's @std/assert is not reachable here). */
import nodeAssert from "node:assert/strict";

export function assert(cond: unknown, msg?: string): asserts cond {
  if (msg === undefined) nodeAssert.ok(cond);
  else nodeAssert.ok(cond, msg);
}
export function assertEquals<T>(actual: unknown, expected: T, msg?: string): asserts actual is T {
  if (msg === undefined) nodeAssert.deepStrictEqual(actual, expected);
  else nodeAssert.deepStrictEqual(actual, expected, msg);
}
export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  if (msg === undefined) nodeAssert.match(actual, re);
  else nodeAssert.match(actual, re, msg);
}
export async function assertRejects(fn: () => Promise<unknown>, re?: RegExp): Promise<void> {
  if (re) await nodeAssert.rejects(fn, re);
  else await nodeAssert.rejects(fn);
}
export function assertThrows(fn: () => unknown, re?: RegExp): void {
  if (re) nodeAssert.throws(fn, re);
  else nodeAssert.throws(fn);
}
