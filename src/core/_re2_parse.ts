/**
 * RE2's syntax (github.com/google/re2/wiki/Syntax) parsed to a tree for re2_match.ts: literals,
 * `.`, classes (ranges, negation, Perl `\d\w\s`, POSIX `[:alpha:]`), groups (capturing, `(?:`,
 * named, flags `i`/`s`/`U`), alternation, repeats up to 1000, `^ $ \A \z \b \B`. RE2's
 * refusals (backreferences, lookaround, nested repeat operators, ...) throw Invalid with RE2's
 * reason; `\pN`, `\Q...\E` and `(?m)` throw Unsupported.
 */

/** A char class: sorted [lo, hi] code point pairs, flattened. */
export type Ranges = number[];

export type Node =
  | { readonly t: "set"; readonly r: Ranges }
  | { readonly t: "cat"; readonly xs: Node[] }
  | { readonly t: "alt"; readonly xs: Node[] }
  | { readonly t: "rep"; readonly x: Node; readonly min: number; readonly max: number }
  | { readonly t: "assert"; readonly k: "bot" | "eot" | "wb" | "nwb" };

/** RE2's limit on a repeat count. */
const MAX_REPEAT = 1000;
const MAX_CP = 0x10ffff;

/** RE2 syntax not implemented here (JavaScript's engine takes it). */
export class Unsupported extends Error {}
/** What RE2 refuses, with its reason. */
export class Invalid extends Error {}

const DIGIT: Ranges = [0x30, 0x39];
const WORD: Ranges = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];
const SPACE: Ranges = [0x09, 0x0a, 0x0c, 0x0d, 0x20, 0x20];
const POSIX: Readonly<Record<string, Ranges>> = {
  alnum: [0x30, 0x39, 0x41, 0x5a, 0x61, 0x7a],
  alpha: [0x41, 0x5a, 0x61, 0x7a],
  ascii: [0, 0x7f],
  blank: [0x09, 0x09, 0x20, 0x20],
  cntrl: [0, 0x1f, 0x7f, 0x7f],
  digit: DIGIT,
  graph: [0x21, 0x7e],
  lower: [0x61, 0x7a],
  print: [0x20, 0x7e],
  punct: [0x21, 0x2f, 0x3a, 0x40, 0x5b, 0x60, 0x7b, 0x7e],
  space: [0x09, 0x0d, 0x20, 0x20],
  upper: [0x41, 0x5a],
  word: WORD,
  xdigit: [0x30, 0x39, 0x41, 0x46, 0x61, 0x66],
};

function normalize(r: Ranges): Ranges {
  const pairs: [number, number][] = [];
  for (let i = 0; i < r.length; i += 2) pairs.push([r[i]!, r[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: Ranges = [];
  for (const [lo, hi] of pairs) {
    const n = out.length;
    if (n > 0 && lo <= out[n - 1]! + 1) out[n - 1] = Math.max(out[n - 1]!, hi);
    else out.push(lo, hi);
  }
  return out;
}

function negate(r: Ranges): Ranges {
  const n = normalize(r);
  const out: Ranges = [];
  let next = 0;
  for (let i = 0; i < n.length; i += 2) {
    if (n[i]! > next) out.push(next, n[i]! - 1);
    next = n[i + 1]! + 1;
  }
  if (next <= MAX_CP) out.push(next, MAX_CP);
  return out;
}

/** Adds the other ASCII case of every letter range (flag `i`; RE2 folds Unicode too, weft's
 * header values are bytes). */
function fold(r: Ranges): Ranges {
  const out = [...r];
  for (let i = 0; i < r.length; i += 2) {
    const lo = r[i]!, hi = r[i + 1]!;
    const a = Math.max(lo, 0x41), b = Math.min(hi, 0x5a);
    if (a <= b) out.push(a + 32, b + 32);
    const c = Math.max(lo, 0x61), d = Math.min(hi, 0x7a);
    if (c <= d) out.push(c - 32, d - 32);
  }
  return normalize(out);
}

interface Flags {
  i: boolean;
  s: boolean;
}

export class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parse(): Node {
    const n = this.alt({ i: false, s: false });
    if (this.pos < this.src.length) throw new Invalid("unexpected )");
    return n;
  }

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private alt(f: Flags): Node {
    const xs = [this.cat(f)];
    while (this.peek() === "|") {
      this.pos++;
      xs.push(this.cat(f));
    }
    return xs.length === 1 ? xs[0]! : { t: "alt", xs };
  }

  private cat(f: Flags): Node {
    const xs: Node[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === "|" || c === ")") break;
      if (c === "(" && this.src.startsWith("(?", this.pos) && this.flagGroup(f)) continue;
      let atom = this.atom(f);
      let repeated = false;
      for (;;) {
        const r = this.repeat();
        if (!r) break;
        if (repeated) throw new Invalid("invalid nested repetition operator");
        repeated = true;
        if (this.peek() === "?") this.pos++; // non-greedy: the same language
        atom = { t: "rep", x: atom, min: r[0], max: r[1] };
      }
      xs.push(atom);
    }
    return xs.length === 1 ? xs[0]! : { t: "cat", xs };
  }

  /** `(?flags)` alone: sets flags for the rest of the group; true when it was one. */
  private flagGroup(f: Flags): boolean {
    const m = /^\(\?([a-zA-Z-]*)\)/.exec(this.src.slice(this.pos));
    if (!m) return false;
    this.setFlags(f, m[1]!);
    this.pos += m[0].length;
    return true;
  }

  private setFlags(f: Flags, spec: string): void {
    let on = true;
    for (const ch of spec) {
      if (ch === "-") on = false;
      else if (ch === "i") f.i = on;
      else if (ch === "s") f.s = on;
      else if (ch === "U") continue; // ungreedy: the same language
      else if (ch === "m") throw new Unsupported("(?m)");
      else throw new Invalid("invalid or unsupported Perl syntax");
    }
  }

  /** `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` as [min, max] (max -1: unbounded). */
  private repeat(): [number, number] | undefined {
    const c = this.peek();
    if (c === "*") return this.pos++, [0, -1];
    if (c === "+") return this.pos++, [1, -1];
    if (c === "?") return this.pos++, [0, 1];
    if (c !== "{") return undefined;
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
    if (!m) return undefined; // a literal "{", as RE2
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === "" ? -1 : Number(m[3]);
    if (min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && max < min)) {
      throw new Invalid("invalid repeat count");
    }
    this.pos += m[0].length;
    return [min, max];
  }

  private atom(f: Flags): Node {
    const c = this.src.codePointAt(this.pos)!;
    const ch = String.fromCodePoint(c);
    if (ch === "*" || ch === "+" || ch === "?") {
      throw new Invalid("missing argument to repetition operator");
    }
    if (ch === "(") return this.group(f);
    if (ch === "[") return this.set(this.cls(f), f);
    if (ch === ".") {
      this.pos++;
      return { t: "set", r: f.s ? [0, MAX_CP] : [0, 0x09, 0x0b, MAX_CP] };
    }
    if (ch === "^") return this.pos++, { t: "assert", k: "bot" };
    if (ch === "$") return this.pos++, { t: "assert", k: "eot" };
    if (ch === "\\") {
      const e = this.escape(false);
      if (typeof e === "string") return { t: "assert", k: e };
      return this.set(e, f);
    }
    this.pos += ch.length;
    return this.set([c, c], f);
  }

  private set(r: Ranges, f: Flags): Node {
    return { t: "set", r: f.i ? fold(r) : normalize(r) };
  }

  private group(f: Flags): Node {
    const rest = this.src.slice(this.pos);
    const inner: Flags = { ...f };
    if (rest.startsWith("(?P<") || (rest.startsWith("(?<") && !/^\(\?<[=!]/.test(rest))) {
      const m = /^\(\?P?<([A-Za-z0-9_]+)>/.exec(rest);
      if (!m) throw new Invalid("invalid named capture");
      this.pos += m[0].length;
    } else if (rest.startsWith("(?")) {
      const m = /^\(\?([a-zA-Z-]*):/.exec(rest);
      if (!m) throw new Invalid("invalid or unsupported Perl syntax"); // lookaround, (?>, ...
      this.setFlags(inner, m[1]!);
      this.pos += m[0].length;
    } else this.pos++;
    const n = this.alt(inner);
    if (this.peek() !== ")") throw new Invalid("missing closing )");
    this.pos++;
    return n;
  }

  /** After `\`: a class, an assertion, or one char. */
  private escape(inClass: boolean): Ranges | "bot" | "eot" | "wb" | "nwb" {
    this.pos++;
    const c = this.peek();
    if (c === undefined) throw new Invalid("trailing backslash at end of expression");
    this.pos++;
    switch (c) {
      case "d":
        return DIGIT;
      case "D":
        return negate(DIGIT);
      case "w":
        return WORD;
      case "W":
        return negate(WORD);
      case "s":
        return SPACE;
      case "S":
        return negate(SPACE);
      case "a":
        return [7, 7];
      case "f":
        return [12, 12];
      case "t":
        return [9, 9];
      case "n":
        return [10, 10];
      case "r":
        return [13, 13];
      case "v":
        return [11, 11];
      case "x": {
        const m = /^(\{([0-9A-Fa-f]{1,6})\}|[0-9A-Fa-f]{2})/.exec(this.src.slice(this.pos));
        if (!m) throw new Invalid("invalid escape sequence");
        this.pos += m[0].length;
        const v = parseInt(m[2] ?? m[1]!, 16);
        if (v > MAX_CP) throw new Invalid("invalid escape sequence");
        return [v, v];
      }
      case "0":
      case "1":
      case "2":
      case "3":
      case "4":
      case "5":
      case "6":
      case "7": {
        // RE2: octal only as \0 or with a leading \0..\7 followed by more octal digits; \1-\9
        // alone would be a backreference, which RE2 does not have.
        if (c !== "0" && !/^[0-7]/.test(this.src.slice(this.pos))) {
          throw new Invalid("invalid escape sequence");
        }
        const m = /^[0-7]{0,2}/.exec(this.src.slice(this.pos))!;
        this.pos += m[0].length;
        const v = parseInt(c + m[0], 8);
        return [v, v];
      }
      case "p":
      case "P":
      case "Q":
        throw new Unsupported(`\\${c}`);
    }
    if (!inClass) {
      if (c === "A") return "bot";
      if (c === "z") return "eot";
      if (c === "b") return "wb";
      if (c === "B") return "nwb";
    }
    const code = c.charCodeAt(0);
    // RE2 allows any ASCII punctuation to be escaped, nothing else.
    if (code < 0x80 && !/[A-Za-z0-9]/.test(c)) return [code, code];
    throw new Invalid("invalid escape sequence");
  }

  /** `[...]` with ranges, negation, escapes and POSIX classes. */
  private cls(f: Flags): Ranges {
    this.pos++;
    let neg = false;
    if (this.peek() === "^") {
      neg = true;
      this.pos++;
    }
    const out: Ranges = [];
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) throw new Invalid("missing closing ]");
      if (c === "]" && !first) break;
      first = false;
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(this.pos));
      if (posix) {
        const r = POSIX[posix[2]!];
        if (!r) throw new Invalid("invalid character class range");
        out.push(...(posix[1] ? negate(r) : r));
        this.pos += posix[0].length;
        continue;
      }
      const lo = this.classChar();
      if (typeof lo !== "number") {
        out.push(...lo);
        continue;
      }
      if (this.peek() === "-" && this.src[this.pos + 1] !== "]" && this.pos + 1 < this.src.length) {
        this.pos++;
        const hi = this.classChar();
        if (typeof hi !== "number" || hi < lo) throw new Invalid("invalid character class range");
        out.push(lo, hi);
      } else out.push(lo, lo);
    }
    this.pos++;
    const r = f.i ? fold(out) : out;
    return neg ? negate(r) : r;
  }

  private classChar(): number | Ranges {
    if (this.peek() === "\\") {
      const e = this.escape(true);
      if (typeof e === "string") throw new Invalid("invalid escape sequence");
      return e.length === 2 && e[0] === e[1] ? e[0]! : e;
    }
    const c = this.src.codePointAt(this.pos)!;
    this.pos += c > 0xffff ? 2 : 1;
    return c;
  }
}
