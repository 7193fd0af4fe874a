import { describe, expect, it } from "vitest";
import {
  hasMarkerAtEnd,
  isTalosComment,
  replyMarker,
  summaryMarker,
  withMarker,
} from "../../src/github/comment-markers.js";
import { expectLinearTime } from "../helpers/hostile-input.js";

describe("comment markers", () => {
  it("are found only where Talos writes them: alone on the last line", () => {
    const reply = withMarker("Answer.", replyMarker(7));
    expect(hasMarkerAtEnd(reply, replyMarker(7))).toBe(true);
    expect(hasMarkerAtEnd(`${reply}\n\n`, replyMarker(7))).toBe(true);
    expect(hasMarkerAtEnd(reply, summaryMarker())).toBe(false);
    // In the middle, in a code span, or glued to text: not Talos's mark.
    expect(hasMarkerAtEnd(`${summaryMarker()}\n\nAnswer.`, summaryMarker())).toBe(false);
    expect(hasMarkerAtEnd(`Answer \`${summaryMarker()}\``, summaryMarker())).toBe(false);
    expect(hasMarkerAtEnd(`Answer ${summaryMarker()}`, summaryMarker())).toBe(false);
  });

  it("mark a comment as Talos's own only at its end", () => {
    expect(isTalosComment(withMarker("Answer.", replyMarker(7)))).toBe(true);
    expect(isTalosComment("/talos help\n> <!-- talos:reply:1 -->\nthanks")).toBe(false);
    expect(isTalosComment("`<!-- talos:summary -->`")).toBe(false);
    expect(isTalosComment(null)).toBe(false);
  });

  it("are looked for in linear time", async () => {
    await expectLinearTime((text) => isTalosComment(text));
    await expectLinearTime((text) => hasMarkerAtEnd(text, summaryMarker()));
  }, 120_000);
});
