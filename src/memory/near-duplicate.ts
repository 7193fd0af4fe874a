import { createHash } from "node:crypto";

// User text: only the start of a text is read, and only the start of each line; a line of an
// error or a frame is shorter than this.
const MAX_TEXT = 20_000;
const MAX_LINE = 300;
// A text's fingerprints: a report quotes a few errors and one trace, not hundreds.
const MAX_FINGERPRINTS = 32;
// Messages shorter than this once normalised ("error: aborting", "panicked at 'explicit
// panic'") say nothing of which bug it is.
const MIN_MESSAGE = 16;
// A trace's fingerprint: its first frames past the runtime's own.
const TRACE_FRAMES = 4;
const MIN_TRACE_FRAMES = 2;
// A fingerprint more records share than this is a common message ("error: aborting due to
// previous error", "internal compiler error: unexpected panic"), not a duplicate's signature.
// On the dev split of the duplicate-issue set, hybrid recall@3 with 4, 8 and 16: 0.367, 0.376
// and 0.378; but at 16 the first near-exact match was the original 43% of the time, against 48%
// at 8. Such a match is shown even below the similarity threshold: precision wins.
export const MAX_SHARED = 8;
// Frames of the runtime, the panic machinery and the C start-up: in every trace, so they tell
// nothing apart.
const RUNTIME_FRAME =
  /unwind|panick|begin_panic|rust_begin|lang_start|libc_start|__libc|_start\b|backtrace|std::rt|\brt::|sys::|sys_common|thread::|boxed::|call_once|fnonce|try_fn|__rust|start_thread|clone\b|<unknown>/;
// An error line: `error: …`, `error[E0308]: …`, `internal compiler error: …` (with or without a
// `file.rs:1:2: 1:5 ` location before it).
const ERROR_MARK = /\berror(?:\[e\d{1,5}\])?:/;

/**
 * Fingerprints of what makes a bug report a near-exact duplicate of another: its error lines,
 * panic messages and stack traces. Each is normalised (numbers, hex addresses, paths and
 * line:col positions removed, lower-cased) and hashed, so that the same panic on another
 * machine, version or line number gives the same fingerprint. Reads only the start of each
 * line, token by token: linear in the text.
 */
export function fingerprintText(text: string): string[] {
  const fingerprints = new Set<string>();
  const frames: string[] = [];
  const add = (kind: string, message: string) => {
    if (message.length >= MIN_MESSAGE && fingerprints.size < MAX_FINGERPRINTS)
      fingerprints.add(hashFingerprint(`${kind}:${message}`));
  };
  const cut = text.slice(0, MAX_TEXT);
  let start = 0;
  while (start < cut.length && fingerprints.size < MAX_FINGERPRINTS) {
    let end = cut.indexOf("\n", start);
    if (end < 0) end = cut.length;
    const line = cut.slice(start, Math.min(end, start + MAX_LINE)).toLowerCase();
    start = end + 1;
    const panic = panicMessage(line);
    if (panic !== undefined) add("panic", normalise(panic));
    const error = ERROR_MARK.exec(line);
    if (error) add("error", normalise(line.slice(error.index)));
    const frame = frameName(line);
    if (frame !== undefined) {
      if (frames.length < TRACE_FRAMES && !RUNTIME_FRAME.test(frame)) frames.push(frame);
    } else if (frames.length > 0) {
      addTrace(frames, add);
    }
  }
  addTrace(frames, add);
  return [...fingerprints];
}

function addTrace(frames: string[], add: (kind: string, message: string) => void): void {
  if (frames.length >= MIN_TRACE_FRAMES) add("trace", frames.join(" < "));
  frames.length = 0;
}

/** `thread 'main' panicked at 'msg', src/main.rs:2:5` and the older `task '<main>' failed at 'msg', …`. */
function panicMessage(line: string): string | undefined {
  for (const mark of ["panicked at '", "failed at '"]) {
    const at = line.indexOf(mark);
    if (at < 0) continue;
    const rest = line.slice(at + mark.length);
    const close = rest.lastIndexOf("',");
    return close < 0 ? rest : rest.slice(0, close);
  }
  return undefined;
}

/**
 * The function of a backtrace line: `  7: 0x7f3d - rt::unwind::begin::h1a2b`, `#3 0x4005 in
 * foo ()`, `at foo (file.js:1:2)`, or `   at src/lib.rs:12` (a location only: no frame).
 */
function frameName(line: string): string | undefined {
  const trimmed = line.trimStart();
  let name: string | undefined;
  const dash = trimmed.indexOf(" - ");
  if (/^\d{1,3}:/.test(trimmed) && dash > 0) name = trimmed.slice(dash + 3);
  else if (/^#\d{1,3} /.test(trimmed) && trimmed.includes(" in "))
    name = trimmed.slice(trimmed.indexOf(" in ") + 4);
  else if (trimmed.startsWith("at ") && trimmed.includes("(")) name = trimmed.slice(3);
  if (name === undefined) return undefined;
  const normalised = normalise(name.split("(")[0]!);
  return normalised.length > 0 ? normalised : undefined;
}

/**
 * Lower-cased text with what differs between two runs of the same bug removed: hex addresses,
 * symbol hashes (`::h1a2b…`), paths (any word with a slash), numbers (line:col, sizes, ids)
 * and runs of spaces. Word by word, with patterns that cannot backtrack: linear.
 */
export function normalise(text: string): string {
  const words: string[] = [];
  for (const word of text.split(/\s+/)) {
    if (!word || word.includes("/") || word.includes("\\")) continue;
    const cleaned = word
      .replace(/0x[0-9a-f]+/g, "")
      .replace(/::h[0-9a-f]{8,}/g, "")
      .replace(/\d+/g, "")
      .replace(/^[:.,;'"`]+|[:.,;'"`]+$/g, "");
    if (cleaned) words.push(cleaned);
  }
  return words.join(" ");
}

const hashFingerprint = (text: string) =>
  createHash("sha1").update(text).digest("base64").slice(0, 16);

/**
 * Records by fingerprint, kept with the keyword index: which records quote the same error, panic
 * or trace as a text.
 */
export class NearDuplicateIndex {
  readonly #byFingerprint = new Map<string, Set<string>>();
  readonly #byId = new Map<string, string[]>();
  readonly #maxShared: number;
  #bytes = 0;

  constructor(maxShared = MAX_SHARED) {
    this.#maxShared = maxShared;
  }

  /** What the index holds in RAM, estimated. */
  get bytes(): number {
    return this.#bytes;
  }

  set(id: string, text: string): void {
    this.setFingerprints(id, fingerprintText(text));
  }

  /** As `set`, with the text's fingerprints taken before (a segment's words file). */
  setFingerprints(id: string, fingerprints: readonly string[]): void {
    this.delete(id);
    if (fingerprints.length === 0) return;
    this.#byId.set(id, [...fingerprints]);
    for (const fingerprint of fingerprints) {
      let ids = this.#byFingerprint.get(fingerprint);
      if (!ids) {
        this.#byFingerprint.set(fingerprint, (ids = new Set()));
        this.#bytes += 200;
      }
      ids.add(id);
      this.#bytes += 120;
    }
  }

  delete(id: string): boolean {
    const fingerprints = this.#byId.get(id);
    if (!fingerprints) return false;
    this.#byId.delete(id);
    for (const fingerprint of fingerprints) {
      const ids = this.#byFingerprint.get(fingerprint)!;
      ids.delete(id);
      this.#bytes -= 120;
      if (ids.size === 0) {
        this.#byFingerprint.delete(fingerprint);
        this.#bytes -= 200;
      }
    }
    return true;
  }

  /**
   * Records that share a distinctive fingerprint with `text` (one fewer than `MAX_SHARED` other
   * records hold), with how many they share, most first. `self`, the query's own records (the
   * issue itself, remembered), are not counted among those others.
   */
  match(
    text: string,
    accept: (id: string) => boolean = () => true,
    self: readonly string[] = [],
  ): Map<string, number> {
    const shared = new Map<string, number>();
    for (const fingerprint of fingerprintText(text)) {
      const ids = this.#byFingerprint.get(fingerprint);
      if (!ids) continue;
      const others = self.reduce((size, id) => size - (ids.has(id) ? 1 : 0), ids.size);
      if (others > this.#maxShared) continue;
      for (const id of ids) if (accept(id)) shared.set(id, (shared.get(id) ?? 0) + 1);
    }
    return new Map([...shared].sort((a, b) => b[1] - a[1]));
  }
}
