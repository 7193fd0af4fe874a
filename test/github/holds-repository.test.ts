import { describe, expect, it } from "vitest";
import { createRepoClient } from "../../src/github/create-repo-client.js";
import { holdsRepository } from "../../src/github/holds-repository.js";
import { githubScope, INSTALLATION_TOKEN, mockInstallationToken } from "../helpers/github-mocks.js";
import { createTestApp } from "../helpers/test-app.js";

const REPO = "/repos/Codertocat/Hello-World";
const repoBody = (id: number) => ({
  id,
  full_name: "Codertocat/Hello-World",
  default_branch: "main",
  private: true,
  visibility: "private",
  archived: false,
  description: null,
});

/**
 * holdsRepository tells whether a repository whose memory was removed is held again, and is
 * asked exactly when Talos missed the events that would have evicted what the cache holds of it.
 */
describe("holdsRepository", () => {
  it("asks GitHub, not the cache, whether the name is still the same repository", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    // Read by an earlier job, while the repository was the one with id 1.
    scope
      .get(REPO)
      .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
      .reply(200, repoBody(1));
    const installation = { id: 2, client: () => app.probot.auth(2) };
    await createRepoClient(await installation.client(), {
      owner: "Codertocat",
      repo: "Hello-World",
    }).getRepository();
    // Since then it was deleted, and another repository made under its name (id 99); Talos
    // did not hear of it (it was down, or Redis lost the other instance's eviction).
    scope
      .get(`${REPO}/installation`)
      .matchHeader("authorization", /^bearer eyJ/i)
      .reply(200, { id: 2 });
    scope
      .get(REPO)
      .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
      .reply(200, repoBody(99));

    const held = await holdsRepository(await app.probot.auth(), installation, {
      id: 1,
      full_name: "Codertocat/Hello-World",
    });

    expect(held).toBe(false);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("is not answered by a 404 cached while the app could not see the repository", async () => {
    const app = await createTestApp();
    const scope = githubScope();
    mockInstallationToken(scope);
    scope.get(REPO).reply(404, { message: "Not Found" });
    const installation = { id: 2, client: () => app.probot.auth(2) };
    await expect(
      createRepoClient(await installation.client(), {
        owner: "Codertocat",
        repo: "Hello-World",
      }).getRepository(),
    ).rejects.toMatchObject({ status: 404 });
    // Added back; the installation_repositories.added delivery never came.
    scope
      .get(`${REPO}/installation`)
      .matchHeader("authorization", /^bearer eyJ/i)
      .reply(200, { id: 2 });
    scope.get(REPO).reply(200, repoBody(1));

    const held = await holdsRepository(await app.probot.auth(), installation, {
      id: 1,
      full_name: "Codertocat/Hello-World",
    });

    expect(held).toBe(true);
    expect(scope.pendingMocks()).toEqual([]);
    // GitHub's answer replaced the cached 404: the readmitted job's own read is served from it.
    const repository = await createRepoClient(await installation.client(), {
      owner: "Codertocat",
      repo: "Hello-World",
    }).getRepository();
    expect(repository.fullName).toBe("Codertocat/Hello-World");
  });
});
