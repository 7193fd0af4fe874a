import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { similarCommand } from "../../src/commands/similar-command.js";
import type { IssueInfo } from "../../src/github/create-repo-client.js";
import { makeDataDir } from "../helpers/test-app.js";
import { issueMemory, openTestStore } from "../helpers/test-memory.js";

const newIssue = (title: string): IssueInfo => ({
  number: 10,
  title,
  body: "",
  state: "open",
  author: "bob",
  labels: [],
  isPullRequest: false,
  url: "https://github.com/acme/widgets/issues/10",
  createdAt: "2026-11-02T00:00:00.000Z",
});

describe("/talos similar", () => {
  it("names no issue below the threshold it states", async () => {
    const store = await openTestStore(makeDataDir());
    // Issue 1 shares "docs" with the issue, at a cosine near 0.26.
    await store.addMany([
      issueMemory(
        1,
        "Docs site is down\n\nEvery page of the docs site answers 502 since the deploy.",
      ),
      issueMemory(4, "Dark mode colours are wrong in the settings page"),
    ]);
    const reply = await similarCommand.run({
      issue: newIssue("Typo in docs"),
      memory: async () => store,
      config: { config: { similar: { max: 3, threshold: 0.9 } } },
      github: { getIssue: async () => ({}) },
      log: pino({ level: "silent" }),
    } as never);
    await store.close();
    // It had said "**Possibly related**: #1 (Docs site is down). Similarity: 0.26 (at least 0.9
    // counts)": a short issue's keyword hit.
    expect(reply).toBe(
      "Nothing in Talos's memory of this repository resembles this issue closely enough (similarity of at least 0.9).",
    );
  });
});
