import { describe, expect, it } from "vitest";
import { parseReviewAnswer } from "../../src/pulls/parse-review-answer.js";

const REVIEW = JSON.stringify({
  verdict: "Sound, but `save()` swallows its error.",
  comments: [
    {
      path: "src/save.ts",
      line: 12,
      severity: "major",
      body: 'The catch returns `{}` and logs "}" nowhere: the error is lost.',
    },
  ],
});

const EXPECTED = {
  verdict: "Sound, but `save()` swallows its error.",
  drafts: [
    {
      path: "src/save.ts",
      line: 12,
      severity: "major",
      body: 'The catch returns `{}` and logs "}" nowhere: the error is lost.',
      startLine: undefined,
      original: undefined,
      suggestion: undefined,
    },
  ],
  malformed: 0,
  structured: true,
  cut: false,
};

describe("parseReviewAnswer", () => {
  it("reads the JSON object when prose after it has a brace", () => {
    const text = `\`\`\`json\n${REVIEW}\n\`\`\`\n\nI left out the style nits in \`render() {}\`.`;
    expect(parseReviewAnswer(text)).toEqual(EXPECTED);
  });

  it("reads the JSON object when prose before it has braces and quotes", () => {
    const text = `Looking at \`function save() {\` and the "unclosed quote first:\n\n${REVIEW}`;
    expect(parseReviewAnswer(text)).toEqual(EXPECTED);
  });

  it("passes over an object before the answer that is not the review", () => {
    const text = `The config {"retries": 3} looks fine. {not json} Here is the review: ${REVIEW} {}`;
    expect(parseReviewAnswer(text)).toEqual(EXPECTED);
  });

  it('reads null as none, and a start_line of 0 or "" as a one-line comment', () => {
    // A null verdict or comments had made the answer prose: its raw JSON was posted as the
    // review, every inline comment lost; a start_line of 0 had made the comment malformed.
    const comment = JSON.parse(REVIEW).comments[0];
    expect(parseReviewAnswer(JSON.stringify({ verdict: null, comments: null }))).toEqual({
      verdict: "",
      drafts: [],
      malformed: 0,
      structured: true,
      cut: false,
    });
    const text = JSON.stringify({
      verdict: EXPECTED.verdict,
      comments: [
        { ...comment, start_line: 0 },
        { ...comment, start_line: "" },
      ],
    });
    const drafts = [EXPECTED.drafts[0], EXPECTED.drafts[0]];
    expect(parseReviewAnswer(text)).toEqual({ ...EXPECTED, drafts });
    const withNullVerdict = JSON.stringify({ verdict: null, comments: [comment] });
    expect(parseReviewAnswer(withNullVerdict)).toEqual({ ...EXPECTED, verdict: "" });
  });

  it('reads a line written as "12", and takes a line that is no number (true, [5]) as no line', () => {
    const comment = JSON.parse(REVIEW).comments[0];
    const parse = (changes: object) =>
      parseReviewAnswer(
        JSON.stringify({ verdict: EXPECTED.verdict, comments: [{ ...comment, ...changes }] }),
      );
    expect(parse({ line: " 12 " })).toEqual(EXPECTED);
    expect(parse({ line: 12, start_line: "10" }).drafts[0]).toMatchObject({
      line: 12,
      startLine: 10,
    });
    for (const line of [true, [5], "12a", 1.5, -3, "1e3"])
      expect(parse({ line }), JSON.stringify(line)).toMatchObject({ drafts: [], malformed: 1 });
    expect(parse({ line: 12, start_line: true })).toMatchObject({ drafts: [], malformed: 1 });
  });

  it("keeps a comment on a path whose escaped name passes 1,000 characters", () => {
    const comment = JSON.parse(REVIEW).comments[0];
    const path = `src/${"\\u{200b}".repeat(400)}.ts`;
    const parsed = parseReviewAnswer(
      JSON.stringify({ verdict: EXPECTED.verdict, comments: [{ ...comment, path }] }),
    );
    expect(path.length).toBeGreaterThan(1_000);
    expect(parsed.drafts[0]?.path).toBe(path);
  });

  it("keeps a text with no review object as the verdict", () => {
    const text = 'No JSON here, only `{"a": {` and a stray }.';
    expect(parseReviewAnswer(text)).toEqual({
      verdict: text,
      drafts: [],
      malformed: 0,
      structured: false,
      cut: false,
    });
  });

  it("stays correct on hostile repeats of object openers and quotes", () => {
    const hostile = '{"a":'.repeat(40_000) + '{"'.repeat(20_000);
    expect(parseReviewAnswer(hostile).structured).toBe(false);
    expect(parseReviewAnswer(`${"{ x ".repeat(45_000)}${REVIEW}`)).toEqual(EXPECTED);
  });

  describe("an answer the output limit cut", () => {
    const second = { path: "src/b.ts", line: 3, severity: "minor", body: 'Say "why" {here}.' };
    const whole = JSON.stringify({
      ...JSON.parse(REVIEW),
      comments: [...JSON.parse(REVIEW).comments, second],
    });

    it("keeps the verdict and each comment whose object closed, wherever the cut falls in the next", () => {
      // Cut in the second comment's key, in its string (past a brace and a quote), before its end.
      for (const end of ['"pa', 'Say \\"why\\" {he', "}."]) {
        const text = `\`\`\`json\n${whole.slice(0, whole.lastIndexOf(end) + end.length - 1)}`;
        expect(parseReviewAnswer(text, { cut: true }), end).toEqual({ ...EXPECTED, cut: true });
      }
    });

    it("keeps whole comments when the verdict comes after them, and a verdict alone", () => {
      const comments = JSON.stringify(JSON.parse(REVIEW).comments);
      expect(
        parseReviewAnswer(`{"comments": ${comments}, "verdict": "Sound, b`, { cut: true }),
      ).toEqual({ ...EXPECTED, verdict: "", cut: true });
      expect(
        parseReviewAnswer(`{"verdict": "Sound.", "comments": [{"path": "src/`, { cut: true }),
      ).toEqual({ verdict: "Sound.", drafts: [], malformed: 0, structured: true, cut: true });
    });

    it("never makes the half-written JSON the verdict, though nothing in it was finished", () => {
      for (const text of ['{"verdict": "The par', "```json\n{", '{"summary": "x", "verdict"'])
        expect(parseReviewAnswer(text, { cut: true }), text).toEqual({
          verdict: "",
          drafts: [],
          malformed: 0,
          structured: false,
          cut: true,
        });
    });

    it("reads a whole answer as whole, though the limit cut the prose after it", () => {
      expect(parseReviewAnswer(`${REVIEW}\n\nAlso, the te`, { cut: true })).toEqual(EXPECTED);
    });

    it("stays linear on hostile repeats of openers, quotes and escapes", () => {
      const time = (text: string) => {
        const started = performance.now();
        parseReviewAnswer(text, { cut: true });
        return performance.now() - started;
      };
      for (const unit of ['{"a":', '{"', '{"comments":[', '{"verdict":"\\', '[{"a":[']) {
        const small = unit.repeat(10_000);
        const large = unit.repeat(40_000);
        time(small);
        expect(time(large) / Math.max(time(small), 1), unit).toBeLessThan(16);
      }
    });
  });
});
