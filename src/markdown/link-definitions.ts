import { afterContainers, isEscaped } from "./code-finder.js";

/**
 * Drops link reference definitions (`[label]: destination "title"`), which render as nothing:
 * neither Markdown's comment idiom, `[//]: # (note)`, nor any other is seen by a reader, title
 * included. A title left open runs on to the line that closes it (a blank line ends it). The
 * text of a link that names one stays. Read line by line, as at the top level: one inside a
 * quote or a list is dropped too, and one in a paragraph's middle (text there) as well.
 */
export function dropLinkDefinitions(lines: string[]): string[] {
  const reader = createDefinitionReader();
  return lines.filter((line) => !reader(line));
}

/**
 * Where in `text` the lines dropLinkDefinitions would drop are, each with its line break: read
 * in place, so that a text of many short lines is not made into as many strings.
 */
export function definitionRanges(text: string): Array<[number, number]> {
  const reader = createDefinitionReader();
  const ranges: Array<[number, number]> = [];
  for (let start = 0; start < text.length;) {
    const found = text.indexOf("\n", start);
    const end = found === -1 ? text.length : found;
    // Only a line that may start one, or one a title runs on to, is read as a string.
    if (reader.open() || text[afterContainers(text, start, end)] === "[")
      if (reader(text.slice(start, end))) ranges.push([start, end + 1]);
    start = end + 1;
  }
  return ranges;
}

/** The labels of the definitions at `ranges` (see definitionRanges), as labelKey reads them. */
export function definitionLabels(
  text: string,
  ranges: ReadonlyArray<readonly [number, number]>,
): Set<string> {
  const labels = new Set<string>();
  for (const [start, end] of ranges) {
    const at = afterContainers(text, start, end);
    const close = text.indexOf("]", at);
    if (text[at] === "[" && close !== -1 && close < end) labels.add(labelKey(text, at + 1, close));
  }
  return labels;
}

// CommonMark's labels are at most 999 characters: a longer `[…]` names no definition.
const MAX_LABEL = 999;

/**
 * A label as references match it, and looser: case, spaces and backslashes ignored, so that a
 * label read otherwise than GitHub reads it still finds its definition (and hides more).
 */
export function labelKey(text: string, start: number, end: number): string {
  if (end - start > MAX_LABEL) return "";
  return text
    .slice(start, end)
    .toLowerCase()
    .replace(/[\s\\]+/g, "");
}

/** Reads lines in order: whether each is a definition's, or its title's continuation. */
function createDefinitionReader(): ((line: string) => boolean) & { open(): boolean } {
  // The character that closes a title still open on the lines before.
  let closer: string | undefined;
  const read = (line: string) => {
    if (closer !== undefined) {
      const blank = line.trim() === "";
      if (blank || line.includes(closer)) closer = undefined;
      return !blank;
    }
    const definition = readLinkDefinition(line);
    if (definition) closer = definition.openTitle;
    return definition !== undefined;
  };
  return Object.assign(read, { open: () => closer !== undefined });
}

const TITLE_CLOSERS: Record<string, string> = { '"': '"', "'": "'", "(": ")" };

/** A line that starts a link reference definition, and the closer of a title it leaves open. */
function readLinkDefinition(line: string): { openTitle: string | undefined } | undefined {
  // In a quote or a list item too: `* [x]: /u "title"` renders nothing either.
  const trimmed = line.slice(afterContainers(line, 0, line.length));
  if (!trimmed.startsWith("[")) return undefined;
  const close = trimmed.indexOf("]");
  if (close < 2 || trimmed[close + 1] !== ":") return undefined;
  const rest = trimmed.slice(close + 2).trimStart();
  if (rest === "") return undefined;
  // The destination: `<…>`, or a run without spaces.
  let after: string;
  if (rest.startsWith("<")) {
    const end = rest.indexOf(">");
    if (end === -1) return undefined;
    after = rest.slice(end + 1);
  } else {
    const space = rest.search(/\s/);
    after = space === -1 ? "" : rest.slice(space);
  }
  const title = after.trimStart();
  if (title === "") return { openTitle: undefined };
  const closer = TITLE_CLOSERS[title[0]!];
  // Words after the destination: the line is text, shown as it is.
  if (closer === undefined) return undefined;
  // A backslash escapes a quote: `"a \" b"` is one title.
  let end = title.indexOf(closer, 1);
  while (end !== -1 && isEscaped(title, end)) end = title.indexOf(closer, end + 1);
  if (end === -1) return { openTitle: closer };
  return title.slice(end + 1).trim() === "" ? { openTitle: undefined } : undefined;
}
