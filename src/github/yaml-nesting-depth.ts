/**
 * How deep the nesting of a YAML text goes, counted in one pass without parsing: at each line,
 * the block levels open (its indentation, as distinct indents, and the `- `, `? ` and `: `
 * indicators that lead it), and at each `[` or `{` outside quotes and comments, the flow
 * collections open too. Where unsure it errs upward (each deeper indent in a block scalar counts,
 * and a bracket it cannot tell is quoted), so that a bound on it keeps the parser's recursion
 * well off the end of the stack.
 */
export function yamlNestingDepth(text: string): number {
  const indents: number[] = [];
  let flow = 0;
  let block = 0;
  let deepest = 0;
  /** Set while the lines of a block scalar (`|`, `>`) go on: theirs is text, whatever it holds. */
  let scalarIndent: number | undefined;
  for (let at = 0; at < text.length;) {
    let end = text.indexOf("\n", at);
    if (end === -1) end = text.length;
    let start = at;
    while (start < end && text[start] === " ") start++;
    const first = text[start];
    if (scalarIndent !== undefined) {
      const blank = start === end || first === "\r";
      if (blank || start - at > scalarIndent) {
        at = end + 1;
        continue;
      }
      scalarIndent = undefined;
    }
    // A comment line opens nothing, its brackets neither.
    if (first === "#") start = end;
    else if (start < end && first !== "\r") {
      const indent = start - at;
      while (indents.length > 0 && indents.at(-1)! >= indent) indents.pop();
      indents.push(indent);
      let chain = 0;
      while (start + 1 < end && "-?:".includes(text[start]!) && /[ \t]/.test(text[start + 1]!)) {
        chain++;
        start += 2;
        while (start < end && (text[start] === " " || text[start] === "\t")) start++;
      }
      block = indents.length + chain;
      deepest = Math.max(deepest, block + flow);
    }
    // Brackets in a quoted scalar or a comment open nothing. A quote opens a scalar only where
    // YAML's would: at a block line's content, or after `[`, `{`, `,` or `: ` on the line. Where
    // that is unsure it counts the brackets (a line inside a flow collection, or a quoted scalar
    // over lines): taken for a quote, `[a\n'b, [[[…` would hide real nesting.
    let quote = "";
    let scalarMayStart = flow === 0;
    let stop = end;
    for (let i = start; i < end; i++) {
      const char = text[i]!;
      if (quote) {
        if (char === "\\" && quote === '"') i++;
        else if (char === quote && quote === "'" && text[i + 1] === "'") i++;
        else if (char === quote) quote = "";
        continue;
      }
      if (char === " " || char === "\t") continue;
      if (char === "#" && (i === start || text[i - 1] === " " || text[i - 1] === "\t")) {
        stop = i;
        break;
      }
      if ((char === '"' || char === "'") && scalarMayStart) quote = char;
      else if (char === "[" || char === "{") deepest = Math.max(deepest, block + ++flow);
      else if ((char === "]" || char === "}") && flow > 0) flow--;
      scalarMayStart =
        char === "[" ||
        char === "{" ||
        char === "," ||
        (char === ":" && (i + 1 === end || text[i + 1] === " " || text[i + 1] === "\t"));
    }
    if (!quote && flow === 0 && endsInScalarHeader(text, start, stop)) scalarIndent = start - at;
    at = end + 1;
  }
  return deepest;
}

/**
 * Whether the line's content (`from`, `to`) ends in a block scalar's header: `|` or `>`, with at
 * most an indentation digit and a chomping sign, standing alone or after a space.
 */
function endsInScalarHeader(text: string, from: number, to: number): boolean {
  let end = to;
  while (end > from && " \t\r".includes(text[end - 1]!)) end--;
  let mark = end;
  while (mark > from && end - mark < 2 && "0123456789+-".includes(text[mark - 1]!)) mark--;
  const char = text[mark - 1];
  return (
    mark > from &&
    (char === "|" || char === ">") &&
    (mark - 1 === from || text[mark - 2] === " " || text[mark - 2] === "\t")
  );
}
