import { describe, expect, it } from "vitest";
import {
  APP_SLUG,
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import { createManualClock } from "../helpers/fake-clock.js";
import { createTestApp, loadFixture } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
const COMMENT_ID = 502;
const MARKER = `<!-- talos:reply:${COMMENT_ID} -->`;
const SINCE = { per_page: "100", since: "2019-05-15T15:20:21Z" };

function forgetComment() {
  const payload = loadFixture<{ comment: { id: number; body: string } }>(
    "issue_comment.created.help.json",
  );
  payload.comment.body = "/talos forget note-1";
  payload.comment.id = COMMENT_ID;
  return payload;
}

describe("/talos forget whose job runs again", () => {
  it("keeps the reply saying the note was forgotten when GitHub posted it but answered 502", async () => {
    const clock = createManualClock();
    // No retries within the request: the 502 on the reply fails the job, which is retried.
    const app = await createTestApp({ clock, env: { TALOS_GITHUB_MAX_RETRIES: "0" } });
    const memory = await app.talos.memory.open({
      installation: 2,
      repository: 186853002,
      name: "Codertocat/Hello-World",
    });
    await memory.add({
      id: "note-1",
      kind: "note",
      text: "releases happen on Tuesdays",
      repo: "Codertocat/Hello-World",
      number: 1,
      createdAt: "2019-05-15T15:20:00Z",
    });

    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    scope.post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`, { content: "eyes" }).reply(201);
    scope.get(`${REPO}/issues/1/comments`).query(SINCE).reply(200, []);
    // GitHub creates the reply, then answers 502.
    const posted: string[] = [];
    scope
      .post(`${REPO}/issues/1/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
      .reply(502, { message: "Bad Gateway" });
    await app.probot.receive({
      id: "forget-retry",
      name: "issue_comment",
      payload: forgetComment(),
    } as never);
    expect(app.logs.lines().some((l) => l.msg === "job failed; will retry")).toBe(true);
    expect(posted).toEqual([`Forgot \`note-1\`.\n\n${MARKER}`]);

    // The retry: the note is gone (the first run removed it), and the reply is there.
    const retry = githubScope();
    retry.post(`${REPO}/issues/comments/${COMMENT_ID}/reactions`, { content: "eyes" }).reply(200);
    retry
      .get(`${REPO}/issues/1/comments`)
      .query(SINCE)
      .reply(200, [
        { id: 9003, body: posted[0], user: { login: `${APP_SLUG}[bot]`, type: "Bot" } },
      ]);
    const edited: string[] = [];
    retry
      .patch(`${REPO}/issues/comments/9003`, (b: { body: string }) => Boolean(edited.push(b.body)))
      .optionally()
      .reply(200, { id: 9003 });
    await clock.advance(30_000);
    await app.talos.services.jobs.idle();

    expect(retry.pendingMocks()).toEqual([]);
    expect(app.logs.lines().filter((l) => l.msg === "job finished")).toHaveLength(1);
    // The thread still says what happened: the note was forgotten.
    expect(edited.filter((body) => !body.startsWith("Forgot `note-1`."))).toEqual([]);
    expect(await memory.get("note-1")).toBeUndefined();
  });
});
