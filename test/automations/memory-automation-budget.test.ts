import { describe, expect, it } from "vitest";
import { HOUR_MS, MemoryAutomationBudget } from "../../src/automations/automation-budget.js";
import { createFakeClock } from "../helpers/fake-clock.js";

let runs = 0;
/** A run of its own: a job's first try. */
const run = () => `job-${++runs}:new-issue`;

describe("the hourly automation budget in memory", () => {
  it("drops the budgets whose runs are all over an hour old", async () => {
    const clock = createFakeClock();
    const budget = new MemoryAutomationBudget({ clock, maxPerInstallationPerHour: 1_000 });
    for (let repository = 1; repository <= 100; repository++)
      expect(await budget.take({ installation: 1, repository }, 5, run())).toBe(true);
    expect(budget.size).toBe(101);
    clock.advance(HOUR_MS);
    expect(await budget.take({ installation: 2, repository: 1 }, 5, run())).toBe(true);
    // Only the budgets of the run just taken are left: installation 2's and its repository's.
    expect(budget.size).toBe(2);
    // A budget used again within the hour is kept and still counts.
    clock.advance(HOUR_MS - 1);
    expect(await budget.take({ installation: 2, repository: 1 }, 1, run())).toBe(false);
    expect(budget.size).toBe(2);
  });

  it("refuses when the installation's budget is spent, and takes from neither", async () => {
    const clock = createFakeClock();
    const budget = new MemoryAutomationBudget({ clock, maxPerInstallationPerHour: 2 });
    expect(await budget.take({ installation: 1, repository: 1 }, 1, run())).toBe(true);
    expect(await budget.take({ installation: 1, repository: 1 }, 1, run())).toBe(false);
    expect(await budget.take({ installation: 1, repository: 2 }, 5, run())).toBe(true);
    // The installation's hour is spent: repository 3's own budget is not touched.
    expect(await budget.take({ installation: 1, repository: 3 }, 5, run())).toBe(false);
    expect(budget.size).toBe(3);
  });
});
