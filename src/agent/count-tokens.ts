import { Tiktoken } from "js-tiktoken/lite";
import cl100k from "js-tiktoken/ranks/cl100k_base";

/**
 * Counts and cuts text in the tokens of OpenAI's models, offline: cl100k_base, the encoding of
 * text-embedding-3-*, bundled with js-tiktoken (LangChain's own counters download their files).
 * gpt-4.1's o200k_base comes within about 1% on English and code (fewer on CJK; camelCase
 * identifiers, up to half more): close enough for the agent's context budget, which sits far
 * below that model's limit.
 */
export interface TokenCounter {
  /**
   * The tokens in `text`. Counting stops once it passes `limit`: the result is then some number
   * above `limit`, not the whole count.
   */
  countTokens(text: string, limit?: number): number;
  /**
   * The longest head of `text`, cut between words (or inside a long run without spaces, never
   * inside a character), of at most `maxTokens` tokens: `text` itself when it fits.
   */
  truncateToTokens(text: string, maxTokens: number): string;
  /**
   * Builds the encoder now rather than on the first count: half a second of blocked event loop,
   * better spent before the server listens than in the middle of a delivery.
   */
  warm(): void;
}

// A piece encoded in one call: whole words, up to this many characters. Each call costs about
// 20 µs whatever its length, so words are not encoded one by one.
const MAX_PIECE_CHARS = 256;
// js-tiktoken's byte-pair merge is quadratic in the bytes of one pre-token (4,000 CJK characters
// took 49 s), and a run without spaces (CJK, minified code, base64, `a` × n) is one pre-token:
// such a stretch is cut every this many bytes, 16 CJK characters.
const MAX_STRETCH_BYTES = 48;
// Runs of one character class, as cl100k's pre-tokenizer tells them apart: letters, digits,
// whitespace, anything else. Used through matchAll, which copies it.
const RUNS = /(\p{L}+)|(\p{N}+)|(\s+)|[^\s\p{L}\p{N}]+/gu;

/** A span of the text encoded in one call; `ends` are the ends of its segments, `end` last. */
interface Piece {
  start: number;
  end: number;
  ends: number[];
  /** True when its end falls inside a pre-token: one token more is counted for it. */
  inexact: boolean;
}

/**
 * The counter. Its encoder (about 50 MB, half a second to build) is built on first use, and
 * only when a text's UTF-8 length (which no token count exceeds) does not settle the question.
 *
 * Text is encoded in pieces, stopping at the limit, so the time is linear in the text however
 * it is made. A piece ends where cl100k's pre-tokenizer starts a new pre-token (before a space,
 * after a word or a number), so the pieces' tokens add up to the whole text's; only a stretch
 * with no such place is cut elsewhere, and each of those cuts is counted one token more (in our
 * tests a byte-pair merge across such a cut saved one token at most), so the count does not fall
 * below the whole text's.
 */
export function createTokenCounter(): TokenCounter {
  let encoder: Tiktoken | undefined;
  // Special tokens (`<|endoftext|>`) in user text are text: OpenAI's API reads them so.
  const encode = (text: string) => (encoder ??= new Tiktoken(cl100k)).encode(text, [], []).length;

  /**
   * The pieces of `text` with their tokens. A piece met before in the same text is not encoded
   * again: a run of one character, the usual hostile input, is one piece repeated.
   */
  function* countPieces(text: string): Generator<{ piece: Piece; bytes: number; tokens: number }> {
    const seen = new Map<string, number>();
    for (const piece of splitIntoPieces(text)) {
      const slice = text.slice(piece.start, piece.end);
      let tokens = seen.get(slice);
      if (tokens === undefined) seen.set(slice, (tokens = encode(slice)));
      const bytes = Buffer.byteLength(slice, "utf8");
      yield { piece, bytes, tokens: tokens + (piece.inexact ? 1 : 0) };
    }
  }

  /** Where the head of `piece` that fits in `room` tokens ends: segment by segment. */
  function fitInPiece(text: string, piece: Piece, room: number): number {
    let start = piece.start;
    for (const end of piece.ends) {
      room -= encode(text.slice(start, end)) + (end === piece.end && piece.inexact ? 1 : 0);
      if (room < 0) return start;
      start = end;
    }
    return start;
  }

  return {
    warm() {
      encoder ??= new Tiktoken(cl100k);
    },
    countTokens(text, limit = Infinity) {
      let count = 0;
      for (const { tokens } of countPieces(text)) {
        count += tokens;
        if (count > limit) break;
      }
      return count;
    },

    truncateToTokens(text, maxTokens) {
      let unread = Buffer.byteLength(text, "utf8");
      if (unread <= maxTokens) return text;
      let count = 0;
      for (const { piece, bytes, tokens } of countPieces(text)) {
        if (count + tokens > maxTokens)
          return text.slice(0, fitInPiece(text, piece, maxTokens - count));
        count += tokens;
        unread -= bytes;
        // What is left has fewer tokens than bytes: it fits without counting.
        if (count + unread <= maxTokens) return text;
      }
      return text;
    },
  };
}

/** The text in pieces of at most MAX_PIECE_CHARS, each made of whole segments. */
function* splitIntoPieces(text: string): Generator<Piece> {
  let start = 0;
  let ends: number[] = [];
  for (const segment of splitIntoSegments(text)) {
    const last = ends.at(-1);
    if (last !== undefined && segment.end - start > MAX_PIECE_CHARS) {
      yield { start, end: last, ends, inexact: false };
      start = last;
      ends = [];
    }
    ends.push(segment.end);
    if (!segment.exact) {
      // Encoded together, the two sides of the cut would make one long pre-token again.
      yield { start, end: segment.end, ends, inexact: true };
      start = segment.end;
      ends = [];
    }
  }
  const last = ends.at(-1);
  if (last !== undefined) yield { start, end: last, ends, inexact: false };
}

/**
 * The text in segments that end where a pre-token ends (`exact`), each at most
 * MAX_STRETCH_BYTES long: a longer stretch between such places is cut by its length.
 */
function* splitIntoSegments(text: string): Generator<{ end: number; exact: boolean }> {
  let stretch = 0;
  let previous: RegExpExecArray | undefined;
  for (const run of text.matchAll(RUNS)) {
    if (previous && endsPreToken(previous, run)) {
      yield* cutStretch(text, stretch, run.index);
      stretch = run.index;
    }
    previous = run;
  }
  if (stretch < text.length) yield* cutStretch(text, stretch, text.length);
}

/**
 * Whether a pre-token of cl100k ends between two runs, also when the text is cut there (its
 * pattern looks ahead only after whitespace). The pattern, for reference:
 * `'s|'t|…|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
 */
function endsPreToken(previous: RegExpExecArray, next: RegExpExecArray): boolean {
  // Letters and digits never share a pre-token with what follows them.
  if (previous[1] !== undefined || previous[2] !== undefined) return true;
  // Whitespace ending in a line break is a pre-token of its own (`\s*[\r\n]+`); other
  // whitespace may lend its last space to the next word, or look ahead.
  if (previous[3] !== undefined) return /[\r\n]$/.test(previous[0]);
  // Punctuation takes the line breaks after it and may lead a word (`.foo`), but not a number
  // or a space.
  if (next[2] !== undefined) return true;
  return next[3] !== undefined && !/^[\r\n]/.test(next[0]);
}

/** A stretch with no pre-token end inside, cut every MAX_STRETCH_BYTES, between characters. */
function* cutStretch(
  text: string,
  start: number,
  end: number,
): Generator<{ end: number; exact: boolean }> {
  // Three bytes at most for each UTF-16 unit: short stretches need no walk.
  if ((end - start) * 3 > MAX_STRETCH_BYTES) {
    let from = start;
    let bytes = 0;
    for (let i = start; i < end;) {
      const size = utf8Size(text, i);
      if (bytes + size > MAX_STRETCH_BYTES && i > from) {
        yield { end: i, exact: false };
        from = i;
        bytes = 0;
      }
      bytes += size;
      i += size === 4 ? 2 : 1;
    }
  }
  yield { end, exact: true };
}

/** The UTF-8 bytes of the character at `i`: 4 for a surrogate pair, which spans two units. */
function utf8Size(text: string, i: number): number {
  const code = text.charCodeAt(i);
  if (code < 0x80) return 1;
  if (code < 0x800) return 2;
  const next = text.charCodeAt(i + 1);
  // A lone surrogate is encoded (TextEncoder) as U+FFFD, three bytes.
  return code >= 0xd800 && code < 0xdc00 && next >= 0xdc00 && next < 0xe000 ? 4 : 3;
}

/**
 * A bound with no encoder: a token is at least one UTF-8 byte, so bytes never under-count (they
 * over-count English about four times). For callers given no counter; stateless.
 */
export const UTF8_TOKEN_BOUND: TokenCounter = {
  warm: () => undefined,
  countTokens: (text) => Buffer.byteLength(text, "utf8"),
  truncateToTokens(text, maxTokens) {
    if (Buffer.byteLength(text, "utf8") <= maxTokens) return text;
    let bytes = 0;
    for (let i = 0; i < text.length;) {
      const size = utf8Size(text, i);
      bytes += size;
      if (bytes > maxTokens) return text.slice(0, i);
      i += size === 4 ? 2 : 1;
    }
    return text;
  },
};
