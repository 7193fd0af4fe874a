import { describe, expect, it, vi } from "vitest";
import { createTestApp, loadFixture } from "../helpers/test-app.js";

/** What every handler does before a delivery is journaled, on hostile or refused deliveries. */
describe("the event guard", () => {
  it("journals a delivery whose sender.login is not a string (its job parks it), not a TypeError", async () => {
    const app = await createTestApp({ logLevel: "warn" });
    const payload = loadFixture<{ sender: Record<string, unknown> }>(
      "issue_comment.created.help.json",
    );
    payload.sender.login = 12345;

    await app.probot.receive({ id: "login-is-a-number", name: "issue_comment", payload } as never);

    expect(await app.talos.services.queue.has("login-is-a-number")).toBe(true);
  });

  it("refuses a delivery past its installation's share of the queue, and still accepts another installation's", async () => {
    // A share of 2 of 10 places. The jobs are held, not run: one that finished would give its
    // place back.
    const app = await createTestApp({
      logLevel: "warn",
      env: { TALOS_JOB_QUEUE_MAX: "10", TALOS_JOB_QUEUE_INSTALLATION_SHARE: "0.2" },
    });
    vi.spyOn(app.talos.services.queue, "claimNext").mockResolvedValue(undefined);
    const deliver = async (id: string, installation: number) => {
      const payload = loadFixture<{ installation: { id: number } }>(
        "issue_comment.created.help.json",
      );
      payload.installation.id = installation;
      return app.probot.webhooks.receive({ id, name: "issue_comment", payload } as never).then(
        () => "accepted",
        (e: unknown) => String(e),
      );
    };

    expect(await deliver("one", 1)).toBe("accepted");
    expect(await deliver("two", 1)).toBe("accepted");
    expect(await deliver("three", 1)).toContain("delivery refused (installation-full)");
    expect(await deliver("elsewhere", 2)).toBe("accepted");
    const { queue, metrics } = app.talos.services;
    expect((await queue.snapshot()).jobs.map((job) => [job.id, job.installation])).toEqual([
      ["one", 1],
      ["two", 1],
      ["elsewhere", 2],
    ]);
    expect((await metrics.jobsRefused.get()).values.map((v) => [v.labels.reason, v.value])).toEqual(
      [["installation-full", 1]],
    );
  });

  it("logs a refused delivery in one short line, without its payload", async () => {
    // A bound of about 100 characters of payload: every delivery is refused as queue-full.
    const app = await createTestApp({
      logLevel: "info",
      env: { TALOS_JOB_QUEUE_MAX_MB: "0.0001" },
    });
    const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
    const filler = "Z".repeat(1_000_000);
    payload.comment.body = `/talos ask why? ${filler}`;

    const error = await app.probot.webhooks
      .receive({ id: "refused-delivery", name: "issue_comment", payload } as never)
      .then(
        () => undefined,
        (e: unknown) => e,
      );

    expect(String(error)).toContain("delivery refused (queue-full)");
    const text = app.logs.text();
    expect(app.logs.lines().some((l) => l.msg === "delivery refused: not journaled")).toBe(true);
    expect(text.includes(filler)).toBe(false);
    expect(Math.max(...text.split("\n").map((line) => line.length))).toBeLessThan(10_000);
  });
});
