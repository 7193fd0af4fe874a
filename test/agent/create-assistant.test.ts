import type * as FsPromises from "node:fs/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createAssistant } from "../../src/agent/create-assistant.js";
import { parseEnv } from "../../src/config.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { PromptError } from "../../src/prompts/prompt-library.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { captureLogs } from "../helpers/test-app.js";

// The shipped prompts/ask.md as an operator may edit it in place (the README invites editing the
// prompts of a running server): `memories` dropped. Valid on its own.
const EDITED_ASK =
  "---\ndescription: A question.\nvariables: [thread, question]\n---\n\n{{thread}}\n\nThe question:\n{{question}}\n";
const override = { ask: undefined as string | undefined };

// The shipped directory is fixed, and the real file is not ours to edit: its read is swapped.
vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof FsPromises>();
  return {
    ...actual,
    readFile: ((path: unknown, ...rest: unknown[]) =>
      override.ask !== undefined && String(path).endsWith("/prompts/ask.md")
        ? Promise.resolve(override.ask)
        : (actual.readFile as (...args: unknown[]) => Promise<unknown>)(
            path,
            ...rest,
          )) as typeof actual.readFile,
  };
});

afterEach(() => (override.ask = undefined));

async function start() {
  const { log } = await captureLogs("warn");
  return createAssistant({
    env: parseEnv({ OPENAI_API_KEY: "sk-test-0123456789abcdefghij" }),
    model: scriptedModel(),
    metrics: createMetrics(),
    clock: createFakeClock(),
    log,
  });
}

describe("the shipped prompts at start-up", () => {
  it("load as shipped", async () => {
    await expect(start()).resolves.toBeDefined();
  });

  it("fail start-up, naming the file and the variables, when one no longer declares those the code fills", async () => {
    // A running server refuses this edit and keeps the last good version; after a restart there
    // was none, and every `/talos ask` failed in renderPrompt ("has no variable(s): memories").
    override.ask = EDITED_ASK;
    const started = start();

    await expect(started).rejects.toThrow(PromptError);
    await expect(started).rejects.toThrow(
      /prompts\/ask\.md: declares thread, question; the code fills thread, question, memories$/,
    );
  });
});
