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
 * common endings cut off ("crashes", "crashed" and "crashing" are one word). Shared by the local
 * embedder and the keyword index, so that both see the same words.
 *
 * A word is a run of letters, digits, `_` and `'` (`[\p{L}\p{N}_']+`), found by one scan over
 * the characters: a regular expression's match objects made this three times slower, and it
 * runs over every text a memory holds when its keyword index is built. One word at a time, not
 * an array of every word: tens of thousands of strings in one array land in V8's large-object
 * space, and the time stopped growing linearly with the text.
 */
export function forEachWord(text: string, visit: (word: string) => void): void {
  const stems = new Map<string, string>();
  const lower = text.toLowerCase();
  let start = -1;
  const emit = (end: number) => {
    const word = trimApostrophes(lower.slice(start, end));
    start = -1;
    if (!word || STOP_WORDS.has(word)) return;
    let stemmed = stems.get(word);
    if (stemmed === undefined) stems.set(word, (stemmed = stem(word)));
    visit(stemmed);
  };
  for (let i = 0; i < lower.length;) {
    const code = lower.charCodeAt(i);
    let size = 1;
    let inWord: boolean;
    if (code < 0x80) inWord = ASCII_WORD[code] === 1;
    else {
      const point = lower.codePointAt(i)!;
      size = point > 0xffff ? 2 : 1;
      inWord = LETTER_OR_NUMBER.test(String.fromCodePoint(point));
    }
    if (inWord) {
      if (start < 0) start = i;
    } else if (start >= 0) emit(i);
    i += size;
  }
  if (start >= 0) emit(lower.length);
}

// Word characters below 128: letters, digits, `_` and `'`.
const ASCII_WORD = Uint8Array.from({ length: 128 }, (_, code) =>
  /[\p{L}\p{N}_']/u.test(String.fromCharCode(code)) ? 1 : 0,
);
const LETTER_OR_NUMBER = /^[\p{L}\p{N}]$/u;

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
