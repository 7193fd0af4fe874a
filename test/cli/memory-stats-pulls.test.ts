import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runTalos } from "../helpers/run-talos.js";
import { makeDataDir } from "../helpers/test-app.js";
import { createTestRegistry, issueMemory } from "../helpers/test-memory.js";

describe("talos memory stats, for repositories with issues switched off", () => {
  it("shows where the backfill is in their pull requests' own listing", async () => {
    const dataDir = makeDataDir();
    const memories = createTestRegistry(join(dataDir, "memory"));
    const issuesDisabledAt = "2026-12-01T00:00:00.000Z";
    const widgets = await memories.open({ installation: 7, repository: 101, name: "acme/widgets" });
    await widgets.add({
      ...issueMemory(9, "A pull request"),
      id: "pull_request-9",
      kind: "pull_request",
    });
    await widgets.saveBackfillState({
      status: "done",
      listing: "pulls",
      page: 3,
      indexed: 130,
      issuesDisabledAt,
    });
    const gadgets = await memories.open({ installation: 7, repository: 102, name: "acme/gadgets" });
    await gadgets.add(issueMemory(1, "Gadget firmware update stalls", { repo: "acme/gadgets" }));
    await gadgets.saveBackfillState({
      status: "running",
      listing: "pulls",
      page: 3,
      indexed: 200,
      issuesDisabledAt,
    });
    await memories.closeAll();

    const { code, out } = await runTalos(["memory", "stats", "--data-dir", dataDir], { env: {} });

    expect(code).toBe(0);
    const lines = out.trim().split("\n");
    expect(lines[0]).toMatch(/\sBACKFILL\s+KINDS$/);
    expect(lines[1]).toMatch(
      /^7\/acme\/gadgets\s.*\sissues off, pulls running at page 3 \(200\)\s+issue 1$/,
    );
    expect(lines[2]).toMatch(
      /^7\/acme\/widgets\s.*\sissues off, pulls done \(130\)\s+pull_request 1$/,
    );
  });
});
