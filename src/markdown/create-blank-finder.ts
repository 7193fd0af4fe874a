/**
 * Where the line after the first blank line at or after `from` starts (the text's length when
 * there is none): where an HTML block `from` is in has surely ended. Asked with positions that
 * never go back; an answer still ahead is reused, so each line is looked at once.
 */
export function createBlankFinder(text: string): (from: number) => number {
  let lastFrom = -1;
  let blankStart = -1;
  let answer = 0;
  return (from) => {
    if (lastFrom !== -1 && from >= lastFrom && from <= blankStart) return answer;
    lastFrom = from;
    for (let line = text.indexOf("\n", from); line !== -1;) {
      const start = line + 1;
      const end = text.indexOf("\n", start);
      const stop = end === -1 ? text.length : end;
      // Spaces and tabs only: CommonMark's blank line (a no-break space is text).
      if (/^[ \t]*$/.test(text.slice(start, stop))) {
        blankStart = start;
        answer = Math.min(text.length, stop + 1);
        return answer;
      }
      line = end;
    }
    blankStart = text.length;
    answer = text.length;
    return answer;
  };
}
