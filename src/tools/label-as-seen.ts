import { cleanUntrustedText } from "../agent/untrusted-text.js";
import type { LabelInfo } from "../github/create-repo-client.js";
import { stripInvisible } from "../markdown/safe-text.js";
import { sliceWhole } from "../slice-whole.js";

/**
 * A label's name as the model reads it, and so as it can write it back: GitHub shows a name as
 * plain text, so it is not read as Markdown (`[WIP]` stays), and loses only what every fence
 * strips, invisible characters (`🧑‍💻` reads `🧑💻`), on one line.
 */
export function labelNameAsSeen(name: string): string {
  return stripInvisible(name).replace(/\s+/g, " ").trim();
}

/**
 * One label as the model reads it, on one line: its name (labelNameAsSeen), then its description
 * cleaned on its own. Cleaned with the others as one text, a description's `<script>` or
 * unclosed `<!--` hid every label after it, and `[WIP]: wip` read as a link definition.
 */
export function labelAsSeen(label: LabelInfo): string {
  const name = labelNameAsSeen(label.name);
  const description = label.description
    ? cleanUntrustedText(label.description).replace(/\s+/g, " ")
    : "";
  return description ? `${name}: ${description}` : name;
}

/**
 * The labels as the model reads them (labelAsSeen), one a line, as many whole lines as fit in
 * `maxChars`, and whether that is all of them; each is cleaned only when its turn comes, so
 * thousands of labels cost what is shown.
 */
export function labelList(
  labels: readonly LabelInfo[],
  maxChars: number,
): { text: string; complete: boolean } {
  const lines: string[] = [];
  let length = 0;
  for (const label of labels) {
    const line = labelAsSeen(label);
    const grown = length + (lines.length > 0 ? 1 : 0) + line.length;
    if (grown > maxChars) {
      // One line longer than all the room (GitHub's limits allow none): its head, not nothing.
      const text = lines.length > 0 ? lines.join("\n") : sliceWhole(line, maxChars);
      return { text, complete: false };
    }
    lines.push(line);
    length = grown;
  }
  return { text: lines.join("\n"), complete: true };
}
