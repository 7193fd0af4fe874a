/**
 * How deep the nesting of a YAML text goes, counted in one pass without parsing: at each line,
 * the block levels open (its indentation, as distinct indents, and the `- `, `? ` and `: `
 * indicators that lead it), and at each `[` or `{`, the flow collections open too. It errs
 * upward (a bracket in quoted text counts, and so does each deeper indent in a block scalar), so
 * that a bound on it keeps the parser's recursion well off the end of the stack.
 */
export function yamlNestingDepth(text: string): number {
  const indents: number[] = [];
  let flow = 0;
  let block = 0;
  let deepest = 0;
  for (let at = 0; at < text.length;) {
    let end = text.indexOf("\n", at);
    if (end === -1) end = text.length;
    let start = at;
    while (start < end && text[start] === " ") start++;
    const first = text[start];
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
    for (let i = start; i < end; i++) {
      const char = text[i];
      if (char === "[" || char === "{") deepest = Math.max(deepest, block + ++flow);
      else if ((char === "]" || char === "}") && flow > 0) flow--;
    }
    at = end + 1;
  }
  return deepest;
}
