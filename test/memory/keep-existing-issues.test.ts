import { RequestError } from "@octokit/request-error";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { keepExistingIssues } from "../../src/memory/find-similar-issues.js";
import type { SearchHit } from "../../src/memory/memory-store.js";

const hit = (kind: "issue" | "pull_request", number: number) =>
  ({
    record: {
      id: `${kind}-${number}`,
      kind,
      repo: "acme/widgets",
      number,
      text: `${kind} ${number}`,
      createdAt: "2026-11-01T10:00:00.000Z",
    },
    score: 0.9,
    keyword: false,
  }) as SearchHit;

const deleted = () =>
  new RequestError("This issue was deleted", 410, {
    request: { method: "GET", url: "/repos/acme/widgets/issues/1", headers: {} },
    response: {
      status: 410,
      url: "/repos/acme/widgets/issues/1",
      headers: {},
      data: { message: "This issue was deleted" },
    },
  });

describe("keeping the similar issues GitHub still has", () => {
  it("leaves out a deleted issue even when memory cannot forget it, and reads no pull request", async () => {
    const lines: Array<{ msg: string; number?: number }> = [];
    const log = pino({}, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const read: number[] = [];
    const kept = await keepExistingIssues([hit("issue", 1), hit("pull_request", 2)], {
      github: {
        getIssue: (number) => {
          read.push(number);
          return Promise.reject(deleted());
        },
      },
      memory: { forgetThread: () => Promise.reject(new Error("memory of acme/widgets is closed")) },
      log,
    });
    expect(kept.map((h) => h.record.id)).toEqual(["pull_request-2"]);
    expect(read).toEqual([1]);
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: "similar issue gone from GitHub, not forgotten", number: 1 }),
    );
  });
});
