import { describe, expect, it } from "vitest";
import { commentChangeWithoutWork } from "../../src/handlers/handle-issue-comment-changed.js";
import { APP_SLUG } from "../helpers/github-mocks.js";
import { loadFixture } from "../helpers/test-app.js";

interface ChangedComment {
  action: string;
  changes?: { body?: { from: string } };
  comment: { id: number; body: string | null; user: { login: string; type: string } };
  sender: { login: string; type: string };
}

const identity = { slug: APP_SLUG, botLogin: `${APP_SLUG}[bot]` };

describe("a comment deleted or edited", () => {
  it("is no work when a bot deletes its own report to post it again (a sticky CI comment 'recreated' on every push), as a bot rewriting it is", () => {
    const bot = { login: "coverage[bot]", type: "Bot" };
    // The same bot, the same report: rewritten in place it is no work...
    const rewritten = loadFixture<ChangedComment>("issue_comment.deleted.person.json");
    Object.assign(rewritten, {
      action: "edited",
      changes: { body: { from: "Coverage: 81%" } },
    });
    rewritten.comment.body = "Coverage: 82%";
    rewritten.comment.user = rewritten.sender = bot;
    expect(commentChangeWithoutWork(rewritten, identity)).toBeDefined();

    // ...but deleted and posted again (the other common way such bots refresh a comment), every
    // push journals a job that reads the whole thread and forgets the thread's summary and
    // answers made since the report was first posted.
    const recreated = loadFixture<ChangedComment>("issue_comment.deleted.person.json");
    recreated.comment.body = "Coverage: 81%";
    recreated.comment.user = recreated.sender = bot;
    expect(commentChangeWithoutWork(recreated, identity)).toBeDefined();
  });
});
