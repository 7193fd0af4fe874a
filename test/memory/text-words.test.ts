import { describe, expect, it } from "vitest";
import { decodeTextWords, encodeTextWords, textWordsOf } from "../../src/memory/text-words.js";

describe("a segment's words file", () => {
  it("gives back each position's words, counts, lengths and fingerprints", () => {
    const words = new Map([
      [
        0,
        textWordsOf(
          "Crash on save\n\nthread 'main' panicked at 'index out of bounds', src/lib.rs:1:2",
        ),
      ],
      [7, textWordsOf("Dark mode\n\nDark theme for the settings page, dark dark.")],
      [9, textWordsOf("")],
    ]);
    const decoded = decodeTextWords(encodeTextWords(words));
    expect([...decoded.keys()]).toEqual([0, 7, 9]);
    for (const [position, expected] of words) {
      const got = decoded.get(position)!;
      expect(got.terms).toEqual(expected.terms);
      expect(Array.from(got.packed)).toEqual(Array.from(expected.packed));
      expect([got.titleLength, got.bodyLength]).toEqual([
        expected.titleLength,
        expected.bodyLength,
      ]);
      expect(got.fingerprints).toEqual(expected.fingerprints);
    }
    expect(decoded.get(0)!.fingerprints.length).toBeGreaterThan(0);
  });

  it("refuses a file not in its shape", () => {
    for (const text of [
      '{"vocabulary":[],"rows":[[1,2,3]]}',
      '{"vocabulary":["a"],"rows":[[0,1,1,[5,1],[]]]}',
      "[]",
      "{",
    ])
      expect(() => decodeTextWords(Buffer.from(text))).toThrow();
  });
});
