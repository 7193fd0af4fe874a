import { describe, expect, it } from "vitest";
import { stripReasoning } from "../../src/agent/strip-reasoning.js";
import { parseReviewAnswer } from "../../src/pulls/parse-review-answer.js";

describe("stripReasoning", () => {
  it("drops a leading <think> block and the blank lines after it", () => {
    expect(stripReasoning("<think>\nplan {a}\n</think>\n\nThe answer.")).toBe("The answer.");
    expect(stripReasoning("  \n<thinking>plan</thinking>The answer.")).toBe("The answer.");
  });

  it("drops a leading <reasoning> block, which had been posted", () => {
    expect(stripReasoning("<reasoning>\nSECRET-PLAN\n</reasoning>\nThe answer.")).toBe(
      "The answer.",
    );
  });

  it("keeps only the final channel of a gpt-oss (harmony) answer, which had been posted whole", () => {
    const analysis = "<|channel|>analysis<|message|>The system prompt says SECRET-PLAN.<|end|>";
    expect(
      stripReasoning(`${analysis}<|start|>assistant<|channel|>final<|message|>Upgrade Node.`),
    ).toBe("Upgrade Node.");
    expect(
      stripReasoning(
        `<|start|>assistant${analysis}<|start|>assistant<|channel|>final<|message|>Upgrade.<|return|>`,
      ),
    ).toBe("Upgrade.");
    // Cut short in the analysis: no answer at all.
    expect(stripReasoning("<|channel|>analysis<|message|>SECRET-PLAN, and")).toBe("");
    // An answer that only quotes the tokens is kept.
    const quoting = "The `<|channel|>` token starts a channel.";
    expect(stripReasoning(quoting)).toBe(quoting);
  });

  it("drops the reasoning up to </think> when the opening tag was in the prompt", () => {
    expect(stripReasoning("plan, then more plan\n</think>\nThe answer.")).toBe("The answer.");
  });

  it("drops reasoning up to the first </think> outside code, whatever it quotes before", () => {
    expect(stripReasoning("I must not write `</think>` early.\n</think>\n\nThe answer.")).toBe(
      "The answer.",
    );
    // An opening tag quoted in code is no opener: the reasoning is not posted for it.
    expect(stripReasoning("They ask about `<think>`. SECRET-PLAN.\n</think>\nThe answer.")).toBe(
      "The answer.",
    );
    // A backtick left open in the reasoning's paragraph does not pair with the answer's.
    expect(stripReasoning("plan with ` one\n</think>\n\nUse `x` here.")).toBe("Use `x` here.");
    expect(stripReasoning("```js\nlet a;\n```\nSo a.</think>Use a.")).toBe("Use a.");
  });

  it("keeps an answer that quotes a closing tag in code, with no opening one", () => {
    // Taken for the end of a template's reasoning, everything up to it was dropped.
    const answers = [
      "The crash comes from `parse_output()` in src/parse.py: it splits on `</think>` and " +
        "assumes a second part, which a model that never thinks does not produce.",
      "Close the element with `</reasoning>` as the schema requires.",
      "Two causes:\n- it splits on ``</thinking>``\n- it assumes a second part",
      // The backtick left alone in the first item does not pair with the second's.
      "Keys:\n- a backtick (`) quotes\n- `</think>` closes",
      "Run this:\n\n```python\nhead, tail = out.split('</think>')\n```\n\nThen guard it.",
      "In a list:\n\n- ~~~\n  </think>\n  ~~~\n- done",
      "Indented:\n\n    out.split('</think>')\n\nThen guard it.",
      "A fence never closed:\n```\nsplit('</think>')",
    ];
    for (const answer of answers) expect(stripReasoning(answer)).toBe(answer);
    // An escaped backtick opens no span: the tag is outside code.
    expect(stripReasoning("a \\`b </think> c`\nAnswer.")).toBe("c`\nAnswer.");
  });

  it("keeps a review (JSON) that quotes a closing tag in a string, so that it still parses", () => {
    const review = JSON.stringify({
      verdict: "Splitting on </think> assumes the model thinks.",
      comments: [
        {
          path: "src/parse.py",
          line: 3,
          severity: "major",
          body: "Guard `out.split('</think>')`.",
        },
      ],
    });
    for (const answer of [review, `\`\`\`json\n${review}\n\`\`\``]) {
      const parsed = parseReviewAnswer(stripReasoning(answer));
      expect(parsed.structured).toBe(true);
      expect(parsed.verdict).toBe("Splitting on </think> assumes the model thinks.");
      expect(parsed.drafts[0]?.body).toBe("Guard `out.split('</think>')`.");
    }
    // Reasoning before the review is still dropped.
    expect(parseReviewAnswer(stripReasoning(`Plan.\n</think>\n\n${review}`)).structured).toBe(true);
  });

  it("counts an unclosed block (cut off by the output limit) or a closed one alone as no answer", () => {
    expect(stripReasoning("<think>plan, plan, pl")).toBe("");
    expect(stripReasoning("<think>plan</think>\n  \n")).toBe("");
  });

  it("keeps an answer that quotes the tags, or has none", () => {
    const quoting = "Strip `<think>` … `</think>` before parsing.";
    expect(stripReasoning(quoting)).toBe(quoting);
    expect(stripReasoning("Plain answer <think>")).toBe("Plain answer <think>");
    expect(stripReasoning("")).toBe("");
  });

  it("handles hostile repeats of the tags in one pass", () => {
    const opens = "<think>".repeat(200_000);
    expect(stripReasoning(opens)).toBe("");
    const closes = "</think>".repeat(200_000);
    expect(stripReasoning(closes)).toBe("</think>".repeat(199_999));
    expect(stripReasoning(`${"<think>".repeat(100_000)}</think>x`)).toBe("x");
    const channels = "<|channel|>".repeat(200_000);
    expect(stripReasoning(channels)).toBe("");
    // Code around every tag, backtick runs that pair with none, fences that open and close.
    const spans = "`</think>` ".repeat(200_000);
    expect(stripReasoning(spans)).toBe(spans);
    const runs = `${Array.from({ length: 1_500 }, (_, i) => "`".repeat(i + 1)).join(" ")} </think>x`;
    expect(stripReasoning(runs)).toBe("x");
    const fences = "```\n</think>\n```\n".repeat(100_000);
    expect(stripReasoning(fences)).toBe(fences);
  });
});
