import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { registerHandlers } from "../src/handlers/index.js";
import { createCommandRegistry } from "../src/commands/command-registry.js";
import { MemoryAutomationBudget } from "../src/automations/automation-budget.js";
import { systemClock } from "../src/clock.js";
import { GitHubCache } from "../src/github/github-cache.js";

interface Manifest {
  name: string;
  description: string;
  default_events: string[];
  default_permissions: Record<string, string>;
}

const manifest = parse(readFileSync(new URL("../app.yml", import.meta.url), "utf8")) as Manifest;

/** Every event name the handlers subscribe to, one entry per `app.on` registration. */
function registeredEvents(): string[][] {
  const registrations: string[][] = [];
  registerHandlers(
    { on: ((events: string | string[]) => registrations.push([events].flat())) as never },
    {
      jobs: { register: () => undefined } as never,
      budgets: {} as never,
      suspensions: {} as never,
      rateLimits: {} as never,
      cache: new GitHubCache({ ttlMs: 1000, max: 10, clock: systemClock }),
      limits: {
        maxRetries: 0,
        maxRetryWaitSeconds: 0,
        writeIntervalMs: 0,
        notificationIntervalMs: 0,
      },
      clock: systemClock,
      assistant: undefined,
      memory: {} as never,
      readmission: {} as never,
      backfill: {} as never,
      markdown: {} as never,
      budget: new MemoryAutomationBudget({ clock: systemClock, maxPerInstallationPerHour: 1 }),
      commands: createCommandRegistry([]),
      identity: { get: () => Promise.reject(new Error("unused")), known: () => undefined },
    },
  );
  return registrations;
}

// GitHub delivers these to every app; a manifest cannot subscribe to them.
const ALWAYS_DELIVERED = new Set(["installation"]);
// Handled when delivered, but subscribing needs more than the least permissions (app.yml says why).
const OPTIONAL = new Set(["member"]);

describe("app.yml", () => {
  const handled = new Set(
    registeredEvents()
      .flat()
      .map((name) => name.split(".")[0] ?? name),
  );

  it("subscribes to every event a handler listens to", () => {
    const missing = [...handled].filter(
      (e) => !ALWAYS_DELIVERED.has(e) && !OPTIONAL.has(e) && !manifest.default_events.includes(e),
    );
    expect(missing).toEqual([]);
  });

  it("lists no event that nobody handles", () => {
    const unhandled = manifest.default_events.filter((e) => !handled.has(e));
    expect(unhandled).toEqual([]);
  });

  it("registers each event once, so no delivery runs two handlers", () => {
    const names = registeredEvents().flat();
    expect(names.length).toBe(new Set(names).size);
    // An event name and one of its actions would both fire for one delivery.
    const bare = names.filter((n) => !n.includes("."));
    expect(names.filter((n) => bare.some((b) => n.startsWith(`${b}.`)))).toEqual([]);
  });

  it("asks for the least permissions that work", () => {
    expect(manifest.default_permissions).toEqual({
      issues: "write",
      pull_requests: "write",
      contents: "read",
      metadata: "read",
    });
    expect(manifest.name).toBeTruthy();
    expect(manifest.description).toBeTruthy();
  });
});
