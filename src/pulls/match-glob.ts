// Longer patterns or paths never match. Patterns come from `.gitattributes` and `review.ignore`;
// 4,096 is PATH_MAX on Linux, where a checkout of a longer path would fail anyway. The caps
// bound a match at 200 × 4,096 steps.
export const MAX_GLOB_PATTERN = 200;
export const MAX_GLOB_PATH = 4_096;

type Token =
  | { kind: "char"; char: string }
  | { kind: "any" }
  | { kind: "star" }
  | { kind: "class"; negated: boolean; ranges: Array<[number, number]> };

type Segment =
  { kind: "globstar" } | { kind: "literal"; text: string } | { kind: "wild"; tokens: Token[] };

// git's wildmatch's POSIX classes (`[[:digit:]]`), ASCII as its ctype is.
const POSIX_CLASSES = new Map<string, Array<[number, number]>>(
  Object.entries({
    alnum: [
      [48, 57],
      [65, 90],
      [97, 122],
    ],
    alpha: [
      [65, 90],
      [97, 122],
    ],
    blank: [
      [9, 9],
      [32, 32],
    ],
    cntrl: [
      [0, 31],
      [127, 127],
    ],
    digit: [[48, 57]],
    graph: [[33, 126]],
    lower: [[97, 122]],
    print: [[32, 126]],
    punct: [
      [33, 47],
      [58, 64],
      [91, 96],
      [123, 126],
    ],
    space: [
      [9, 13],
      [32, 32],
    ],
    upper: [[65, 90]],
    xdigit: [
      [48, 57],
      [65, 70],
      [97, 102],
    ],
  }),
);

/**
 * A `[...]` class starting at `chars[start]`, and the index after its `]`; undefined when it is
 * not closed, and the `[` is then an ordinary character, as in git's wildmatch. A POSIX class
 * git does not know (`[[:word:]]`) makes the class match nothing, as git's pattern does.
 */
function readClass(chars: string[], start: number): { token: Token; end: number } | undefined {
  let i = start + 1;
  let negated = chars[i] === "!" || chars[i] === "^";
  if (negated) i++;
  const ranges: Array<[number, number]> = [];
  // A `]` first in the class is one of its characters, not its end.
  let first = true;
  let unknown = false;
  while (i < chars.length) {
    let char = chars[i] as string;
    if (char === "]" && !first) {
      if (unknown) [negated, ranges.length] = [false, 0];
      return { token: { kind: "class", negated, ranges }, end: i + 1 };
    }
    first = false;
    if (char === "[" && chars[i + 1] === ":") {
      const close = chars.indexOf(":", i + 2);
      if (close !== -1 && chars[close + 1] === "]") {
        const named = POSIX_CLASSES.get(chars.slice(i + 2, close).join(""));
        if (named) ranges.push(...named);
        else unknown = true;
        i = close + 2;
        continue;
      }
    }
    if (char === "\\" && i + 1 < chars.length) char = chars[++i] as string;
    if (chars[i + 1] === "-" && i + 2 < chars.length && chars[i + 2] !== "]") {
      let high = chars[i + 2] as string;
      i += 2;
      if (high === "\\" && i + 1 < chars.length) high = chars[++i] as string;
      ranges.push([char.codePointAt(0)!, high.codePointAt(0)!]);
    } else {
      ranges.push([char.codePointAt(0)!, char.codePointAt(0)!]);
    }
    i++;
  }
  return undefined;
}

/**
 * One path segment of a pattern, by code point so that `?` takes a whole character. An
 * unclosed `[` rescans the rest of the segment, which the pattern cap keeps to 200².
 */
function compileSegment(text: string): Segment {
  if (!/[*?[\\]/.test(text)) return { kind: "literal", text };
  const chars = Array.from(text);
  const tokens: Token[] = [];
  let read: ReturnType<typeof readClass>;
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i] as string;
    if (char === "*") {
      // `**` inside a segment (`a**b`) is two stars, and two stars are one.
      if (tokens.at(-1)?.kind !== "star") tokens.push({ kind: "star" });
    } else if (char === "?") {
      tokens.push({ kind: "any" });
    } else if (char === "[" && (read = readClass(chars, i))) {
      tokens.push(read.token);
      i = read.end - 1;
    } else if (char === "\\" && i + 1 < chars.length) {
      tokens.push({ kind: "char", char: chars[++i] as string });
    } else {
      tokens.push({ kind: "char", char });
    }
  }
  return { kind: "wild", tokens };
}

interface CompiledGlob {
  segments: Segment[];
  /** A trailing `/`: the pattern names a directory, and matches every path under it. */
  directory: boolean;
}

function compileGlob(pattern: string): CompiledGlob | undefined {
  let body = pattern;
  const directory = body.endsWith("/");
  if (directory) body = body.slice(0, -1);
  const anchored = body.startsWith("/");
  if (anchored) body = body.slice(1);
  if (body === "") return undefined;
  const parts = body.split("/");
  // Two stars or more, as git's wildmatch reads them: `***/x` had matched only one directory
  // deep (found by a review).
  const segments = parts.map((part): Segment =>
    /^\*{2,}$/.test(part) ? { kind: "globstar" } : compileSegment(part),
  );
  // As in .gitignore: a pattern without a slash (but a trailing one) matches at any depth.
  if (!anchored && parts.length === 1) segments.unshift({ kind: "globstar" });
  return { segments, directory };
}

function accepts(token: Token, char: string): boolean {
  switch (token.kind) {
    case "char":
      return token.char === char;
    case "class": {
      const code = char.codePointAt(0)!;
      return token.ranges.some(([low, high]) => low <= code && code <= high) !== token.negated;
    }
    default:
      return true;
  }
}

/**
 * Whether `tokens` match the whole of `chars`, by dynamic programming over the positions of
 * `chars` reached so far: tokens × characters steps, never backtracking.
 */
function matchTokens(tokens: Token[], chars: string[]): boolean {
  const length = chars.length;
  let reach = new Uint8Array(length + 1);
  let next = new Uint8Array(length + 1);
  reach[0] = 1;
  // Positions before `from` are never reached again: each token starts its scan there.
  let from = 0;
  for (const token of tokens) {
    if (token.kind === "star") {
      // A star reaches every position from the first one reached.
      reach.fill(1, from);
      continue;
    }
    next.fill(0, from);
    let first = -1;
    for (let j = from; j < length; j++) {
      if (reach[j] === 1 && accepts(token, chars[j] as string)) {
        next[j + 1] = 1;
        if (first < 0) first = j + 1;
      }
    }
    if (first < 0) return false;
    from = first;
    [reach, next] = [next, reach];
  }
  return reach[length] === 1;
}

/**
 * Whether `path` matches `pattern`, a glob as in `.gitignore` and `.gitattributes`:
 * - `*` matches within a path segment, `?` one character but `/`, `[a-z]`, `[!a]` classes;
 * - `**` as a whole segment (first, last, or between two others) matches any number of
 *   segments, and at the end at least one: `dir/**` matches what is in `dir`, not `dir`; so
 *   does a whole segment of more stars (`***`), as in git;
 * - a pattern without `/` (`*.lock`) matches the file name at any depth; one with a `/` in it
 *   or at its start is anchored at the root;
 * - a trailing `/` (`vendor/`) names a directory, and matches every path under it.
 *
 * Matched segment by segment with dynamic programming rather than compiled to a RegExp: the
 * author of a pull request writes both the paths and `.gitattributes`, and a backtracking
 * match of `*a*a*a*…` takes exponential time. Case-sensitive, as git is by default.
 */
export function matchGlob(pattern: string, path: string): boolean {
  return createGlobMatcher(pattern)(path);
}

export type GlobMatcher = (path: string) => boolean;

/**
 * `matchGlob` for one pattern and many paths, the pattern built once. Every glob of a list is
 * tried on every file of a pull request (3,000 at most), and building each one again for each
 * file cost 3 µs a pair: 18 s of blocked event loop for 2,000 globs. Before the match, a path
 * must have the literal head an anchored pattern starts with (`generated/` of `generated/**`),
 * the literal tail it ends with (`.lock` of `*.lock`), or for a directory pattern its name with
 * a `/` after it: most of a list's globs fail there, at the cost of a string comparison.
 */
export function createGlobMatcher(pattern: string): GlobMatcher {
  const glob = pattern.length > MAX_GLOB_PATTERN ? undefined : compileGlob(pattern);
  if (!glob) return () => false;
  const { head, tail } = literalEnds(pattern, glob.directory);
  const within = glob.directory ? `${tail}/` : "";
  return (path) =>
    path.length <= MAX_GLOB_PATH &&
    path.startsWith(head) &&
    (glob.directory ? within === "/" || path.includes(within) : path.endsWith(tail)) &&
    matchCompiled(glob, path);
}

/**
 * The literal text an anchored pattern starts with (empty when not anchored), and the literal
 * text its last segment ends with (a globstar, then `/x`, matches `x`, which has no `/x`).
 */
function literalEnds(pattern: string, directory: boolean): { head: string; tail: string } {
  const end = directory ? pattern.length - 1 : pattern.length;
  const slash = pattern.indexOf("/");
  let head = "";
  if (slash !== -1 && slash < end) {
    const start = slash === 0 ? 1 : 0;
    let at = start;
    while (at < end && !isSpecial(pattern.charCodeAt(at))) at++;
    head = pattern.slice(start, at);
  }
  let at = end;
  while (at > 0 && !isSpecial(pattern.charCodeAt(at - 1)) && pattern[at - 1] !== "/") at--;
  return { head, tail: pattern.slice(at, end) };
}

/** `*`, `?`, `[`, `]` and `\`: a character that may not stand for itself. */
function isSpecial(code: number): boolean {
  return code === 42 || code === 63 || code === 91 || code === 93 || code === 92;
}

function matchCompiled(glob: CompiledGlob, path: string): boolean {
  const names = path.split("/");
  const chars: Array<string[] | undefined> = [];
  const charsOf = (j: number) => (chars[j] ??= Array.from(names[j] as string));
  const count = glob.segments.length;
  // Past the last `**` of a pattern (that does not end in `/`) each segment takes one path
  // segment, so only the path's last ones can match them: `*.lock` is tried on the file name
  // alone, not on every directory above it.
  const lastGlobstar = glob.segments.findLastIndex((segment) => segment.kind === "globstar");
  let reach = new Uint8Array(names.length + 1);
  reach[0] = 1;
  for (const [i, segment] of glob.segments.entries()) {
    const next = new Uint8Array(names.length + 1);
    // The one path segment this pattern segment can take, when it is past the last `**`.
    const only = i > lastGlobstar && !glob.directory ? names.length - (count - i) : undefined;
    if (segment.kind === "globstar") {
      // Zero or more segments; a `**` that ends the pattern takes one at least.
      const least = i === count - 1 ? 1 : 0;
      let any = 0;
      for (let j = least; j <= names.length; j++) {
        any |= reach[j - least] as number;
        next[j] = any;
      }
    } else {
      const to = only === undefined ? names.length : Math.min(only + 1, names.length);
      for (let j = Math.max(only ?? 0, 0); j < to; j++) {
        if (!reach[j]) continue;
        const matched =
          segment.kind === "literal"
            ? segment.text === names[j]
            : matchTokens(segment.tokens, charsOf(j));
        if (matched) next[j + 1] = 1;
      }
    }
    if (!next.includes(1)) return false;
    reach = next;
  }
  if (!glob.directory) return reach[names.length] === 1;
  // A directory pattern matches when it names a directory the path is in.
  return reach.subarray(1, names.length).includes(1);
}
