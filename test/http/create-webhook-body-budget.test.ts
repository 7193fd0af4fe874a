import { describe, expect, it } from "vitest";
import { createWebhookBodyBudget } from "../../src/http/create-webhook-body-budget.js";

describe("createWebhookBodyBudget", () => {
  it("holds what fits, all requests together, and refuses the rest", () => {
    const budget = createWebhookBodyBudget(100);
    const declared = budget.hold(60);
    expect(declared).toBeDefined();
    expect(budget.hold(41)).toBeUndefined();
    // A chunked body holds nothing at first, and its chunks as they come.
    const chunked = budget.hold(0)!;
    expect(chunked.add(30)).toBe(true);
    expect(chunked.add(11)).toBe(false);
    expect(chunked.add(10)).toBe(true);
    expect(budget.used()).toBe(100);
    // Full: not even a body of no bytes yet is taken.
    expect(budget.hold(0)).toBeUndefined();
    declared!.release();
    expect(budget.used()).toBe(40);
  });

  it("gives back each request's part once, however many times it is released", () => {
    const budget = createWebhookBodyBudget(100);
    const first = budget.hold(50)!;
    const second = budget.hold(20)!;
    first.release();
    first.release();
    expect(budget.used()).toBe(20);
    // Released, it holds nothing more.
    expect(first.add(10)).toBe(false);
    second.release();
    expect(budget.used()).toBe(0);
  });
});
