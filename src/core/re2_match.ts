/**
 * Whole-value regular expressions as Envoy's safe_regex matches them: RE2 syntax and RE2's
 * guarantee of time linear in the input (github.com/google/re2/wiki/Syntax). JavaScript's
 * backtracking engine takes exponential time on patterns such as `https://([a-z0-9]+)+\.x\.com`
 * with an input a client chooses (an Origin or a path of 40 characters held a node's event loop
 * for a minute), so route, header and CORS origin regexes run here: parsed once (RE2 syntax,
 * _re2_parse.ts); a pattern a backtracking engine still runs in linear time (one open-ended
 * repeat, few optional parts: nearly every route regex) is re-emitted as JavaScript source of the
 * same language and run by the built-in engine, any other is compiled to an NFA and simulated one
 * character at a time (Thompson / Pike VM, every live state advanced together). What RE2
 * refuses (backreferences, lookaround, `\C`, repeat counts over 1000, ...) is an error with RE2's
 * reason; the few RE2 forms not implemented here (Unicode classes `\pN`, `\Q...\E`, multi-line
 * `(?m)`) fall back to JavaScript's engine.
 */

import { Invalid, type Node, Parser, type Ranges, Unsupported } from "./_re2_parse.ts";

/** Compiled program size past which a pattern is refused (RE2 limits memory the same way). */
const MAX_PROG = 20_000;

/** The NFA: one instruction per index. */
const enum Op {
  Set,
  Split,
  Jmp,
  Assert,
  Match,
}

interface Prog {
  readonly op: Op[];
  /** Set: ranges; Assert: kind. */
  readonly arg: (Ranges | string | undefined)[];
  /** Split: both targets; Jmp: x. */
  readonly x: number[];
  readonly y: number[];
  /** run()'s scratch: two state lists, the visited marks (by generation), the empty-move stack. */
  lists: [Int32Array, Int32Array];
  mark: Int32Array;
  stack: Int32Array;
  gen: number;
}

function compile(root: Node): Prog {
  const none = new Int32Array(0);
  const p: Prog = {
    op: [],
    arg: [],
    x: [],
    y: [],
    lists: [none, none],
    mark: none,
    stack: none,
    gen: 0,
  };
  const emit = (op: Op, arg?: Ranges | string): number => {
    if (p.op.length >= MAX_PROG) throw new Invalid("expression too large");
    p.op.push(op);
    p.arg.push(arg);
    p.x.push(-1);
    p.y.push(-1);
    return p.op.length - 1;
  };
  const gen = (n: Node): void => {
    switch (n.t) {
      case "set":
        emit(Op.Set, n.r);
        return;
      case "assert":
        emit(Op.Assert, n.k);
        return;
      case "cat":
        for (const x of n.xs) gen(x);
        return;
      case "alt": {
        const jumps: number[] = [];
        for (let i = 0; i < n.xs.length; i++) {
          if (i < n.xs.length - 1) {
            const s = emit(Op.Split);
            p.x[s] = s + 1;
            gen(n.xs[i]!);
            jumps.push(emit(Op.Jmp));
            p.y[s] = p.op.length;
          } else gen(n.xs[i]!);
        }
        for (const j of jumps) p.x[j] = p.op.length;
        return;
      }
      case "rep": {
        for (let i = 0; i < n.min; i++) gen(n.x);
        if (n.max < 0) {
          const s = emit(Op.Split);
          p.x[s] = s + 1;
          gen(n.x);
          const j = emit(Op.Jmp);
          p.x[j] = s;
          p.y[s] = p.op.length;
        } else {
          const exits: number[] = [];
          for (let i = n.min; i < n.max; i++) {
            const s = emit(Op.Split);
            p.x[s] = s + 1;
            exits.push(s);
            gen(n.x);
          }
          for (const s of exits) p.y[s] = p.op.length;
        }
        return;
      }
    }
  };
  gen(root);
  emit(Op.Match);
  const n = p.op.length;
  p.lists = [new Int32Array(n), new Int32Array(n)];
  p.mark = new Int32Array(n).fill(-1);
  p.stack = new Int32Array(2 * n + 2);
  return p;
}

const isWord = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || (c >= 0x61 && c <= 0x7a);

function inSet(r: Ranges, c: number): boolean {
  for (let i = 0; i < r.length; i += 2) {
    if (c < r[i]!) return false;
    if (c <= r[i + 1]!) return true;
  }
  return false;
}

/** Pike VM over code points: whether the whole of `s` matches. The work per character is
 * bounded by the program's size, whatever the input. The state lists are the program's own,
 * reused (matching is synchronous, so never re-entered). */
function run(p: Prog, s: string): boolean {
  const { mark, stack } = p;
  let cur = p.lists[0], nxt = p.lists[1];
  let curLen = 0, nxtLen = 0;
  const len = s.length;
  // The states reached from `start` by empty moves at UTF-16 index `at`, into `nxt`.
  const add = (at: number, start: number): void => {
    let sp = 0;
    stack[sp++] = start;
    while (sp > 0) {
      const pc = stack[--sp]!;
      if (mark[pc] === p.gen) continue;
      mark[pc] = p.gen;
      const op = p.op[pc];
      if (op === Op.Jmp) stack[sp++] = p.x[pc]!;
      else if (op === Op.Split) {
        stack[sp++] = p.y[pc]!;
        stack[sp++] = p.x[pc]!;
      } else if (op === Op.Assert) {
        if (holds(p.arg[pc] as string, at, s)) stack[sp++] = pc + 1;
      } else nxt[nxtLen++] = pc;
    }
  };
  p.gen++;
  add(0, 0);
  [cur, nxt, curLen] = [nxt, cur, nxtLen];
  for (let i = 0; i < len && curLen > 0;) {
    const c = s.codePointAt(i)!;
    i += c > 0xffff ? 2 : 1;
    nxtLen = 0;
    p.gen++;
    for (let k = 0; k < curLen; k++) {
      const pc = cur[k]!;
      if (p.op[pc] === Op.Set && inSet(p.arg[pc] as Ranges, c)) add(i, pc + 1);
    }
    [cur, nxt, curLen] = [nxt, cur, nxtLen];
  }
  for (let k = 0; k < curLen; k++) if (p.op[cur[k]!] === Op.Match) return true;
  return false;
}

function holds(k: string, at: number, s: string): boolean {
  if (k === "bot") return at === 0;
  if (k === "eot") return at === s.length;
  // Word chars are ASCII: a surrogate half is no word char either way.
  const before = at > 0 && isWord(s.charCodeAt(at - 1));
  const after = at < s.length && isWord(s.charCodeAt(at));
  return (before !== after) === (k === "wb");
}

/**
 * Whether a backtracking engine matches `root` (anchored at both ends) in time linear in the
 * input: at most one repeat with a choice of more than one iteration, at most four optional
 * parts (`?`, alternatives), and no choice at all inside a repeat that iterates more than once.
 * Such patterns (nearly every route regex: `/api/v[0-9]+/.*`, HTTPRoute's `/x(/.*)?`) run on
 * JavaScript's engine, ~10x faster than the VM; any other on the VM.
 */
function backtrackSafe(root: Node): boolean {
  let many = 0, optional = 0, ok = true;
  const walk = (n: Node, underMany: boolean): void => {
    if (n.t === "cat") { for (const x of n.xs) walk(x, underMany); }
    else if (n.t === "alt") {
      if (underMany) ok = false;
      optional += n.xs.length - 1;
      for (const x of n.xs) walk(x, underMany);
    } else if (n.t === "rep") {
      const choice = n.min !== n.max;
      if (choice && underMany) ok = false;
      if (choice && n.max === 1) optional++;
      else if (choice) many++;
      walk(n.x, underMany || n.max !== 1);
    }
  };
  walk(root, false);
  return ok && many <= 1 && optional <= 4;
}

const cp = (c: number): string => `\\u{${c.toString(16)}}`;

/** `n` as JavaScript regex source (flag `u`), the same language. */
function jsSource(n: Node): string {
  switch (n.t) {
    case "set": {
      let out = "";
      for (let i = 0; i < n.r.length; i += 2) {
        out += n.r[i] === n.r[i + 1] ? cp(n.r[i]!) : `${cp(n.r[i]!)}-${cp(n.r[i + 1]!)}`;
      }
      return out === "" ? "[^\\s\\S]" : `[${out}]`;
    }
    case "assert":
      return n.k === "bot" ? "^" : n.k === "eot" ? "$" : n.k === "wb" ? "\\b" : "\\B";
    case "cat":
      return n.xs.map((x) => `(?:${jsSource(x)})`).join("");
    case "alt":
      return `(?:${n.xs.map(jsSource).join("|")})`;
    case "rep":
      return `(?:${jsSource(n.x)}){${n.min},${n.max < 0 ? "" : n.max}}`;
  }
}

/** A whole-value matcher for `pattern`, or RE2's reason for refusing it. `vm`: always the VM
 * (tests compare both engines). */
export function compileFullRegex(
  pattern: string,
  vm = false,
): ((s: string) => boolean) | { error: string } {
  let prog: Prog;
  let tree: Node;
  try {
    tree = new Parser(pattern).parse();
    prog = compile(tree);
  } catch (e) {
    if (e instanceof Invalid) return { error: e.message };
    if (!(e instanceof Unsupported)) throw e;
    try {
      // JavaScript spells RE2's `\pL` as `\p{L}`, and takes `(?m)` as a flag.
      const m = pattern.startsWith("(?m)");
      const js = (m ? pattern.slice(4) : pattern).replace(/\\([pP])([A-Za-z])/g, "\\$1{$2}");
      const re = new RegExp(`^(?:${js})$`, m ? "sum" : "su");
      return (s) => re.test(s);
    } catch {
      return { error: "invalid regular expression" };
    }
  }
  if (!vm && backtrackSafe(tree)) {
    const re = new RegExp(`^(?:${jsSource(tree)})$`, "u");
    return (s) => re.test(s);
  }
  return (s) => run(prog, s);
}

/** Why RE2 (Envoy's safe_regex, istiod's Go regexp) refuses `pattern`, or undefined. */
export function regexProblem(pattern: string): string | undefined {
  const m = compileFullRegex(pattern);
  return typeof m === "function" ? undefined : m.error;
}
