import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { EventHandlerError } from "../../src/handlers/guard-event.js";
import { setupJobRunner } from "../helpers/job-runner-setup.js";

const newJob = (id: string) => ({
  id,
  kind: "work",
  event: "issues.edited",
  thread: "1/10#1",
  installation: 1,
  repository: "octo/hello",
  payload: {},
});

describe("a handler that throws something odd (through guardEvent's wrapper)", () => {
  for (const [name, make] of [
    ["a string", () => "boom"],
    ["undefined", () => undefined],
    ["a null-prototype object", () => Object.create(null) as object],
    [
      "an Error whose status getter throws",
      () =>
        Object.defineProperty(new Error("odd"), "status", {
          get() {
            throw new Error("getter");
          },
        }),
    ],
  ] as Array<[string, () => unknown]>) {
    it(`${name}: the job's failure is recorded and its issue's next job runs`, async () => {
      const { journal, runner } = await setupJobRunner({ concurrency: 2 });
      const rejections: unknown[] = [];
      const onRejection = (reason: unknown) => rejections.push(reason);
      process.on("unhandledRejection", onRejection);
      onTestFinished(() => void process.off("unhandledRejection", onRejection));
      const ran: string[] = [];
      runner.register("work", async (_context) => {
        const id = ran.length === 0 ? "first" : "second";
        ran.push(id);
        if (id === "first") {
          // As guardEvent's registered handler wraps every handler's error.
          let wrapped: unknown;
          try {
            wrapped = new EventHandlerError("issues.edited", 1, "octo/hello", make());
          } catch (error) {
            wrapped = error;
          }
          throw wrapped;
        }
      });
      runner.start(async () => "context");
      await runner.submit(newJob("first"), "context");
      await runner.submit(newJob("second"), "context");
      await runner.idle();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await runner.idle();
      expect(rejections).toEqual([]);
      // The first waits for its retry (30 s): the second, behind it in its thread, waits too; the
      // thread is not left held by a run that never recorded its end.
      expect(journal.list().find((job) => job.id === "first")?.retryAt).toBeDefined();
    });
  }
});

describe("an error whose chain of causes loops", () => {
  it("is classified in bounded time (a child process, so a hang cannot hold the test run)", async () => {
    const { spawnSync } = await import("node:child_process");
    const root = join(import.meta.dirname, "../..");
    const script = [
      `import { classifyJobFailure, retryAfterMs } from ${JSON.stringify(join(root, "src/jobs/job-runner.ts"))};`,
      `const error = new Error("wrapped twice");`,
      `error.cause = new Error("inner", { cause: error });`,
      `console.log(classifyJobFailure(error), retryAfterMs(error, 0));`,
    ].join("\n");
    const result = spawnSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        cwd: root,
        timeout: 10_000,
        encoding: "utf8",
      },
    );
    // Killed by the timeout: the loop walking `cause` never ends (the event loop is blocked, so
    // the server answers nothing, /healthz included, and SIGTERM is never handled).
    expect(result.signal).toBeNull();
    expect(result.stdout.trim()).toBe("retry undefined");
  });
});
