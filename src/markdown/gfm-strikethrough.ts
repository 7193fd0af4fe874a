import type { MarkdownIt, StateInline } from "markdown-it";

const TILDE = 0x7e;
// Delimiter markers, one per run length, so that markdown-it's balance_pairs pairs a run only with
// one of its own length (it pairs equal markers). Above 0xffff, no character's code is either.
const MARKERS = new Map([
  [1, 0x1_0000 + 1],
  [2, 0x1_0000 + 2],
]);
const MARKUP = new Map([...MARKERS].map(([length, marker]) => [marker, "~".repeat(length)]));

/**
 * GitHub's strikethrough, where markdown-it's takes `~~` only: a run of one or two tildes, closed
 * by a run of the same length (`~old~`, `~~old~~`); a run of three or more is text. GitHub renders
 * both (https://github.github.com/gfm/#strikethrough-extension-: "a matching pair of one or two
 * tildes"), as micromark-extension-gfm-strikethrough does to match it. Adapted from markdown-it's
 * lib/rules_inline/strikethrough.mjs; tokens are `s_open`/`s_close` as its are, their markup the
 * run. Linear: each run is scanned once, and markdown-it's balance_pairs pairs the delimiters.
 */
export function gfmStrikethrough(md: MarkdownIt): void {
  md.inline.ruler.at("strikethrough", tokenize);
  md.inline.ruler2.at("strikethrough", postProcess);
}

function tokenize(state: StateInline, silent: boolean): boolean {
  if (silent || state.src.charCodeAt(state.pos) !== TILDE) return false;
  const scanned = state.scanDelims(state.pos, true);
  const run = "~".repeat(scanned.length);
  const marker = MARKERS.get(scanned.length);
  // Consumed whole: left to the next rule, each tilde of a long run would scan the rest again.
  if (marker === undefined) state.pending += run;
  else {
    state.push("text", "", 0).content = run;
    state.delimiters.push({
      marker,
      length: 0,
      token: state.tokens.length - 1,
      end: -1,
      open: scanned.can_open,
      close: scanned.can_close,
    });
  }
  state.pos += scanned.length;
  return true;
}

/** Turns each paired run into `s_open` and `s_close`, in the top level and in each link's text. */
function postProcess(state: StateInline): void {
  pairRuns(state, state.delimiters);
  for (const meta of state.tokens_meta) if (meta?.delimiters) pairRuns(state, meta.delimiters);
}

function pairRuns(state: StateInline, delimiters: StateInline["delimiters"]): void {
  for (const opener of delimiters) {
    const markup = MARKUP.get(opener.marker);
    if (markup === undefined || opener.end === -1) continue;
    const closer = delimiters[opener.end]!;
    Object.assign(state.tokens[opener.token]!, {
      type: "s_open",
      tag: "s",
      nesting: 1,
      markup,
      content: "",
    });
    Object.assign(state.tokens[closer.token]!, {
      type: "s_close",
      tag: "s",
      nesting: -1,
      markup,
      content: "",
    });
  }
}
