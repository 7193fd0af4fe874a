import { Context } from "probot";
import { githubScope, mockInstallationToken } from "./github-mocks.js";
import { createTestApp, loadFixture } from "./test-app.js";

/**
 * A comment's context in Codertocat/Hello-World, on installation 2's client (the cache on), for
 * reading `.github/talos.yml` as a handler does; `evict` drops what the cache holds of a
 * repository, as a push to its config file does.
 */
export async function openConfigContext() {
  const app = await createTestApp();
  const scope = githubScope();
  mockInstallationToken(scope);
  const octokit = await app.probot.auth(2);
  const payload = loadFixture<Record<string, never>>("issue_comment.created.help.json");
  const context = new Context(
    { id: "config-1", name: "issue_comment", payload } as never,
    octokit as never,
    app.logs.log,
  );
  const evict = (repo: string) => app.talos.cache.evict({ installation: "2", repo });
  return { app, scope, octokit, context, evict };
}
