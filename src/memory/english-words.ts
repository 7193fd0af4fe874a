// English function words: shared by almost any two texts, they would make everything similar.
const STOP_WORDS = new Set(
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
 * One word at a time, not an array of every word: tens of thousands of strings in one array
 * land in V8's large-object space, and the time stopped growing linearly with the text. The
 * pattern has no nested repetition, so one scan is linear in the text.
 */
export function forEachWord(text: string, visit: (word: string) => void): void {
  const stems = new Map<string, string>();
  const pattern = /[\p{L}\p{N}_']+/gu;
  const lower = text.toLowerCase();
  for (let match = pattern.exec(lower); match; match = pattern.exec(lower)) {
    const word = trimApostrophes(match[0]);
    if (!word || STOP_WORDS.has(word)) continue;
    let stemmed = stems.get(word);
    if (stemmed === undefined) stems.set(word, (stemmed = stem(word)));
    visit(stemmed);
  }
}

/** `'quoted'` → `quoted`, by index: `/'+$/` would rescan a long run of quotes from each one. */
function trimApostrophes(word: string): string {
  let start = 0;
  let end = word.length;
  while (start < end && word[start] === "'") start++;
  while (end > start && word[end - 1] === "'") end--;
  return word.slice(start, end);
}

/** A crude English stemmer: enough to make plurals and tenses meet, never a dictionary. */
function stem(word: string): string {
  if (/\d/.test(word)) return word;
  const cut = word.length > 4 ? word.replace(/(?:ing|ed|es|s)$/, "") : word;
  const base = cut.length >= 3 ? cut : word;
  return base.length >= 4 ? base.replace(/e$/, "") : base;
}
