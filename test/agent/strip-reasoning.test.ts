import { describe, expect, it } from "vitest";
import { stripReasoning } from "../../src/agent/strip-reasoning.js";

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
  });
});
