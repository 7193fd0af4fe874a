import type nock from "nock";
import { expect } from "vitest";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "./github-mocks.js";
import type { ScriptedChatModel } from "./scripted-model.js";
import { createTestApp, loadFixture } from "./test-app.js";

const REPO = "/repos/Codertocat/Hello-World";

/**
 * An OWNER's `/talos ask <question>` on issue 1, replayed through Probot as delivery `id` with a
 * scripted model; `mockReads` adds what its tools read. Every mock must be used. Returns the
 * comment bodies posted.
 */
export async function replayAsk(
  model: ScriptedChatModel,
  {
    id = "ask-replies",
    question = "why does the build fail?",
    mockReads = () => undefined,
  }: { id?: string; question?: string; mockReads?: (scope: nock.Scope) => void } = {},
): Promise<string[]> {
  const app = await createTestApp({ model });
  const scope = githubScope();
  mockAppIdentity(scope);
  mockInstallationToken(scope);
  mockRepoConfig(scope);
  scope.post(`${REPO}/issues/comments/492700400/reactions`, { content: "eyes" }).reply(201, {});
  scope.get(REPO).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "master" });
  scope.get(`${REPO}/issues/1/comments`).query({ per_page: "100" }).reply(200, []);
  mockReads(scope);
  const posted: string[] = [];
  scope
    .post(`${REPO}/issues/1/comments`, (b: { body: string }) => Boolean(posted.push(b.body)))
    .reply(201, { id: 501 });
  const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
  payload.comment.body = `/talos ask ${question}`;

  await app.probot.receive({ id, name: "issue_comment", payload } as never);

  expect(scope.pendingMocks()).toEqual([]);
  return posted;
}
