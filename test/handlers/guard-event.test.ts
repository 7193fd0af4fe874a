import { describe, expect, it } from "vitest";
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
