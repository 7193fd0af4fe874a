import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { githubScope, mockInstallationToken } from "../helpers/github-mocks.js";
import { createTestApp, makeDataDir, type TestApp } from "../helpers/test-app.js";
import { issueMemory } from "../helpers/test-memory.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const HELLO_WORLD = 186853002;
const hello = { installation: 2, repository: HELLO_WORLD, name: "Codertocat/Hello-World" };
const SUSPENDED_AT = "2026-11-20T08:00:00.000Z";

function receive(app: TestApp, name: string, payload: unknown, id: string) {
  return app.probot.receive({ id, name, payload } as never);
}

function installationEvent(action: "suspend" | "unsuspend") {
  const payload = webhookExample("installation", action);
  payload.installation.suspended_at = action === "suspend" ? SUSPENDED_AT : null;
  return payload;
}

describe("an unsuspension handled while the server shuts down", () => {
  it("leaves the catch-up for the next start rather than dropping it", async () => {
    // SIGTERM: jobs get TALOS_SHUTDOWN_GRACE_MS, then the backfill runner closes while a job
    // still running may go on. From then BackfillRunner.request() refuses (false), which
    // catchUpInstallation counts as "nothing queued", and the handler clears the mark all the
    // same (handle-installation-changed.ts): the catch-up is in neither suspensions.json nor
    // backfill-queue.json, and the next start catches nothing up. Expected: either the mark
    // stays (the job fails and is journaled for the next start) or the catch-up is queued.
    const dataDir = makeDataDir();
    const app = await createTestApp({
      backfills: true,
      dataDir,
      env: { TALOS_SHUTDOWN_GRACE_MS: "10" },
    });
    await (
      await app.talos.memory.open(hello)
    ).add(issueMemory(7, "Crash on save", { repo: hello.name }));
    await receive(app, "installation", installationEvent("suspend"), "delivery-suspend");

    // The unsuspension's job is slow to read the memories (a slow disk or database) ...
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const list = app.talos.memory.list.bind(app.talos.memory);
    let listing!: () => void;
    const listed = new Promise<void>((resolve) => (listing = resolve));
    vi.spyOn(app.talos.memory, "list").mockImplementation(async () => {
      listing();
      await gate;
      return list();
    });
    // ... and reads them once the backfill runner has closed, before the process ends.
    const close = app.talos.backfill.close.bind(app.talos.backfill);
    const handled = () =>
      app.logs
        .lines()
        .some((l) => l.delivery === "delivery-unsuspend" && String(l.msg).startsWith("job "));
    vi.spyOn(app.talos.backfill, "close").mockImplementation(async () => {
      await close();
      release();
      for (let i = 0; i < 200 && !handled(); i++) await new Promise((r) => setTimeout(r, 10));
    });
    // GitHub would answer: only the runner's closing is what stops the catch-up.
    const scope = githubScope();
    mockInstallationToken(scope);
    scope
      .get("/installation/repositories")
      .query(true)
      .optionally()
      .reply(200, { total_count: 1, repositories: [{ id: HELLO_WORLD, full_name: hello.name }] });
    void receive(app, "installation", installationEvent("unsuspend"), "delivery-unsuspend");
    await listed;
    await app.talos.close();

    const marks = existsSync(join(dataDir, "suspensions.json"))
      ? JSON.parse(readFileSync(join(dataDir, "suspensions.json"), "utf8"))
      : {};
    const queueFile = join(dataDir, "backfill-queue.json");
    const queued = existsSync(queueFile) ? readFileSync(queueFile, "utf8") : "";
    expect(marks[2] !== undefined || queued.includes(SUSPENDED_AT)).toBe(true);
  });
});
