import { stripInvisible } from "../markdown/safe-text.js";

// C1 controls (U+0080–U+009F), which stripInvisible keeps: a terminal may act on them as on an
// ESC sequence (U+009B is CSI).
const C1_CONTROLS = /[\u0080-\u009F]/g;

/**
 * Text as the terminal may show it: without control characters but tab and line feed, and with
 * `oneLine` (a table's cell) without those either, each a space. What the CLI prints comes from
 * text anyone writes (an issue's title, a model's answer to one), and may hold escape sequences:
 * OSC 52 sets the clipboard, others clear the screen, retitle the window or move the cursor over
 * earlier lines (a carriage return too). Invisible and bidi characters go as well; joiners stay,
 * for emoji. Clean before cutting to a width: the width is then what shows.
 */
export function toTerminalText(text: string, oneLine = false): string {
  const shown = stripInvisible(text.replace(/\r\n?/g, "\n"), true).replace(C1_CONTROLS, "");
  return oneLine ? shown.replace(/[\t\n]/g, " ") : shown;
}
