// English function words: shared by almost any two texts, they would make everything similar.
export const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    "a an and are as at be been but by can could did do does doing for from had has have how i if " +
    "in into is it its it's me my no not of on or our so than that the their them then there these " +
    "they this those to too up us was we were what when where which while who why will with would " +
    "you your yes also just only very should shall may might must any all some each about after " +
    "before again get got"
  ).split(" "),
);

/**
 * Calls `visit` with each word of `text` in order: lower-cased, English function words left out,
 * common endings cut off ("crashes", "crashed" and "crashing" are one word). The local embedder's
 * words: its stored vectors were made from them, so they do not change (a run of Chinese stays
 * one word here; `forEachKeyword` splits it).
 *
 * A word is a run of letters, digits, `_` and `'` (`[\p{L}\p{N}_']+`), found by one scan over
 * the characters: a regular expression's match objects made this three times slower, and it
 * runs over every text a memory holds when its keyword index is built. One word at a time, not
 * an array of every word: tens of thousands of strings in one array land in V8's large-object
 * space, and the time stopped growing linearly with the text.
 */
export function forEachWord(text: string, visit: (word: string) => void): void {
  scanWords(text, visit, false);
}

/**
 * The keyword index's words: `forEachWord`'s, except in Chinese, Japanese and Korean, which are
 * read as overlapping pairs of characters ("文件写入" gives 文件, 件写 and 写入; a character alone
 * is a word of its own), as Lucene's CJK analyzer reads them. Chinese and Japanese write no
 * spaces, so a sentence was one word, and a search for a few of its characters found nothing.
 * Korean writes spaces, but joins particles to their noun (파일을, 파일이): as pairs, 파일
 * finds both. Letters of other scripts in such a run end it (`Rust로` gives rust and 로).
 * Pairs are neither stemmed nor stop words: BM25's idf weighs the common ones down.
 *
 * Combining marks (`\p{M}`) belong to their word, and the text is read in NFC: a vowel sign
 * ended the word, so त्रुटि ("error") was the single letters त, र and ट, found in any Hindi
 * text, and "Öffnen" typed decomposed (o and a mark, as macOS pastes it) was "o" and "ffnen".
 * With runs of marks bounded (`toKeywordText`), that is linear; callers cut the text first.
 * `forEachWord` keeps its words as they were: the local embedder's stored vectors were made
 * from them.
 */
export function forEachKeyword(text: string, visit: (word: string) => void): void {
  scanWords(text, visit, true);
}

/**
 * How `forEachKeyword` reads a character (a code point): in a word, a CJK letter (read in
 * pairs), or between words, so that counting a query's words finds the boundaries BM25 does.
 */
export function keywordCharOf(point: number): "word" | "cjk" | "between" {
  const kind = kindOf(point, true);
  return kind === WORD ? "word" : kind === CJK ? "cjk" : "between";
}

/**
 * `text` as PostgreSQL's text search should read it for the same words as `forEachKeyword`:
 * each run of CJK letters written as its pairs, with spaces between (its parser would take the
 * run as one word). Text without any is returned as it is, so that English is read as before.
 * Written into one array of UTF-16 code units: an array of a string per pair grew super-linearly
 * (V8's large-object space, as in `forEachWord`).
 */
export function spaceCjkPairs(text: string): string {
  // A run of n characters becomes n - 1 pairs of two, each followed by a space, and one before.
  let out: Uint16Array | undefined;
  let length = 0;
  let copied = 0;
  let run = -1;
  let previous = -1;
  const write = (from: number, to: number) => {
    for (let j = from; j < to; j++) out![length++] = text.charCodeAt(j);
  };
  for (let i = 0; i < text.length;) {
    const code = text.charCodeAt(i);
    let size = 1;
    let cjk = false;
    if (code >= 0x80) {
      const point = text.codePointAt(i)!;
      size = point > 0xffff ? 2 : 1;
      cjk = isCjkLetter(point);
    }
    if (cjk) {
      out ??= new Uint16Array(3 * text.length + 2);
      if (run < 0) {
        write(copied, i);
        out[length++] = SPACE;
        run = i;
      } else {
        write(previous, i + size);
        out[length++] = SPACE;
      }
      previous = i;
    } else if (run >= 0) {
      // A run of one character is a word of its own; a longer one's last pair has its space.
      if (previous === run) {
        write(run, i);
        out![length++] = SPACE;
      }
      copied = i;
      run = -1;
    }
    i += size;
  }
  if (!out) return text;
  if (run >= 0 && previous === run) {
    write(run, text.length);
    out[length++] = SPACE;
  } else if (run < 0) write(copied, text.length);
  return Buffer.from(out.buffer, 0, length * 2).toString("utf16le");
}

const SPACE = 0x20;

/**
 * A letter or digit of Chinese, Japanese or Korean (by the scripts that use it: the long vowel
 * mark ー is both kana's), which `forEachKeyword` reads in pairs. The large blocks are answered
 * by their ranges, so that most such characters cost no regular expression.
 */
export function isCjkLetter(point: number): boolean {
  if ((point >= 0x4e00 && point <= 0x9fff) || (point >= 0xac00 && point <= 0xd7a3)) return true;
  // Hiragana, and katakana full- and half-width, without their punctuation (・ and ･).
  if ((point >= 0x3041 && point <= 0x3096) || (point >= 0x30a1 && point <= 0x30ff))
    return point !== 0x30fb;
  if (point >= 0xff66 && point <= 0xff9f) return true;
  // No script of these below Hangul's jamo, nor in the punctuation and symbols before the radicals.
  if (point < 0x1100 || (point >= 0x2000 && point < 0x2e80)) return false;
  return CJK_LETTER.test(String.fromCodePoint(point));
}

const CJK_LETTER = /^(?=[\p{L}\p{N}])[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Hangul}]$/u;

const OTHER = 0;
const WORD = 1;
const CJK = 2;

/**
 * Lower case, then NFC (lower-casing can leave a text decomposed: İ gives i and a combining
 * dot). NFC sorts each run of combining marks by insertion, quadratic in its length (80,000
 * alternating marks took V8 13 s), so runs are cut to 30 marks beforehand, the bound of
 * Unicode's stream-safe format (UAX #15): no real word has more.
 */
function toKeywordText(text: string): string {
  return text.replace(MARK_RUN, "$1").toLowerCase().normalize("NFC");
}

// The marks past the first 30 of a run. Linear: a failed match stops within 31 marks of where
// it started, and `replace` starts each search at 0 (the flag's lastIndex is never reused).
const MARK_RUN = /(\p{M}{30})\p{M}+/gu;

/** A character of `forEachWord`'s text, or with `keywords`, of `forEachKeyword`'s. */
function kindOf(point: number, keywords: boolean): number {
  if (point < 0x80) return ASCII_WORD[point] === 1 ? WORD : OTHER;
  if (!keywords) return LETTER_OR_NUMBER.test(String.fromCodePoint(point)) ? WORD : OTHER;
  if (isCjkLetter(point)) return CJK;
  return LETTER_MARK_OR_NUMBER.test(String.fromCodePoint(point)) ? WORD : OTHER;
}

/** `forEachWord`, and with `pairs`, `forEachKeyword`: one scan over the characters. */
function scanWords(text: string, visit: (word: string) => void, pairs: boolean): void {
  const stems = new Map<string, string>();
  const lower = pairs ? toKeywordText(text) : text.toLowerCase();
  // The word being read, and the CJK run being read (its first and its last character so far).
  let start = -1;
  let run = -1;
  let previous = -1;
  const emit = (end: number) => {
    const word = trimApostrophes(lower.slice(start, end));
    start = -1;
    if (!word || STOP_WORDS.has(word)) return;
    let stemmed = stems.get(word);
    if (stemmed === undefined) stems.set(word, (stemmed = stem(word)));
    visit(stemmed);
  };
  // A run's pairs are visited as it is read; a run of one character is a word of its own.
  const endRun = (end: number) => {
    if (previous === run) visit(lower.slice(run, end));
    run = -1;
  };
  for (let i = 0; i < lower.length;) {
    const code = lower.charCodeAt(i);
    let size = 1;
    let kind: number;
    if (code < 0x80) kind = ASCII_WORD[code] === 1 ? WORD : OTHER;
    else {
      const point = lower.codePointAt(i)!;
      size = point > 0xffff ? 2 : 1;
      kind = kindOf(point, pairs);
    }
    if (kind === CJK) {
      if (start >= 0) emit(i);
      if (run < 0) run = i;
      else visit(lower.slice(previous, i + size));
      previous = i;
      i += size;
      continue;
    }
    if (run >= 0) endRun(i);
    if (kind === WORD) {
      if (start < 0) start = i;
    } else if (start >= 0) emit(i);
    i += size;
  }
  if (start >= 0) emit(lower.length);
  if (run >= 0) endRun(lower.length);
}

// Word characters below 128: letters, digits, `_` and `'`.
const ASCII_WORD = Uint8Array.from({ length: 128 }, (_, code) =>
  /[\p{L}\p{N}_']/u.test(String.fromCharCode(code)) ? 1 : 0,
);
const LETTER_OR_NUMBER = /^[\p{L}\p{N}]$/u;
const LETTER_MARK_OR_NUMBER = /^[\p{L}\p{M}\p{N}]$/u;

/** `'quoted'` → `quoted`, by index: `/'+$/` would rescan a long run of quotes from each one. */
function trimApostrophes(word: string): string {
  let start = 0;
  let end = word.length;
  while (start < end && word[start] === "'") start++;
  while (end > start && word[end - 1] === "'") end--;
  return start === 0 && end === word.length ? word : word.slice(start, end);
}

/** A crude English stemmer: enough to make plurals and tenses meet, never a dictionary. */
function stem(word: string): string {
  for (let i = 0; i < word.length; i++) {
    const code = word.charCodeAt(i);
    if (code >= 48 && code <= 57) return word;
  }
  // The longest of -ing, -ed or -es, or -s, cut from words of five letters or more.
  let cut = word;
  if (word.length > 4) {
    if (word.endsWith("ing")) cut = word.slice(0, -3);
    else if (word.endsWith("ed") || word.endsWith("es")) cut = word.slice(0, -2);
    else if (word.endsWith("s")) cut = word.slice(0, -1);
  }
  const base = cut.length >= 3 ? cut : word;
  return base.length >= 4 && base.endsWith("e") ? base.slice(0, -1) : base;
}
