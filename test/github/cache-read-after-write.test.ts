import nock from "nock";
import { describe, expect, it } from "vitest";
import type { Octokit } from "../../src/github/octokit.js";
import { API, INSTALLATION_TOKEN, mockInstallationToken } from "../helpers/github-mocks.js";
import { createTestApp, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const REPO = { owner: "Codertocat", repo: "Hello-World" };
const PATH = "/repos/Codertocat/Hello-World";
const CONFIG = `${PATH}/contents/.github%2Ftalos.yml`;

async function installationClient(app: TestApp): Promise<Octokit> {
  const tokens = nock(API);
  mockInstallationToken(tokens);
  const octokit = await app.probot.auth(2);
  return octokit;
}

const issue = (labels: string[]) => ({
  number: 1,
  title: "Found a bug",
  labels: labels.map((name) => ({ name })),
});

describe("a write through the cached client", () => {
  it("evicts the issue it changed: the next read goes to GitHub", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    const scope = nock(API)
      .get(`${PATH}/issues/1`)
      .once()
      .reply(200, issue([]))
      .post(`${PATH}/issues/1/labels`, { labels: ["bug"] })
      .matchHeader("authorization", `token ${INSTALLATION_TOKEN}`)
      .reply(200, [{ name: "bug" }])
      .get(`${PATH}/issues/1`)
      .once()
      .reply(200, issue(["bug"]));

    expect((await octokit.rest.issues.get({ ...REPO, issue_number: 1 })).data.labels).toEqual([]);
    await octokit.rest.issues.addLabels({ ...REPO, issue_number: 1, labels: ["bug"] });
    const after = await octokit.rest.issues.get({ ...REPO, issue_number: 1 });

    expect(after.data.labels).toEqual([{ name: "bug" }]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("evicts even when GitHub's answer is an error: the write may have happened", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    const scope = nock(API)
      .get(`${PATH}/issues/1`)
      .once()
      .reply(200, issue([]))
      .patch(`${PATH}/issues/1`, { state: "closed" })
      .reply(502, { message: "Bad Gateway" })
      .get(`${PATH}/issues/1`)
      .once()
      .reply(200, { ...issue([]), state: "closed" });

    await octokit.rest.issues.get({ ...REPO, issue_number: 1 });
    await expect(
      octokit.rest.issues.update({
        ...REPO,
        issue_number: 1,
        state: "closed",
        request: { retries: 0 },
      }),
    ).rejects.toMatchObject({ status: 502 });
    const after = await octokit.rest.issues.get({ ...REPO, issue_number: 1 });

    expect(after.data.state).toBe("closed");
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("evicts the labels a new label joins", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    const scope = nock(API)
      .get(`${PATH}/labels`)
      .query(true)
      .once()
      .reply(200, [{ name: "bug" }])
      .post(`${PATH}/labels`, { name: "docs", color: "0000ff" })
      .reply(201, { name: "docs" })
      .get(`${PATH}/labels`)
      .query(true)
      .once()
      .reply(200, [{ name: "bug" }, { name: "docs" }]);

    await octokit.rest.issues.listLabelsForRepo(REPO);
    await octokit.rest.issues.createLabel({ ...REPO, name: "docs", color: "0000ff" });
    const after = await octokit.rest.issues.listLabelsForRepo(REPO);

    expect(after.data.map((l) => l.name)).toEqual(["bug", "docs"]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("keeps what the write did not change: a comment edit leaves the config and repository", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    const scope = nock(API)
      .get(PATH)
      .once()
      .reply(200, { full_name: "Codertocat/Hello-World" })
      .get(CONFIG)
      .once()
      .reply(404, { message: "Not Found" })
      .patch(`${PATH}/issues/comments/7`, { body: "edited" })
      .reply(200, { id: 7, body: "edited" });

    await octokit.rest.repos.get(REPO);
    await octokit.rest.repos.getContent({ ...REPO, path: ".github/talos.yml" }).catch(() => null);
    await octokit.rest.issues.updateComment({ ...REPO, comment_id: 7, body: "edited" });
    await octokit.rest.repos.get(REPO);
    await octokit.rest.repos.getContent({ ...REPO, path: ".github/talos.yml" }).catch(() => null);

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.talos.cache.size).toBe(2);
  });

  it("keeps the issue a reply or a reaction goes to: the next command does not read it again", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    const scope = nock(API)
      .get(`${PATH}/issues/1`)
      .once()
      .reply(200, issue([]))
      .post(`${PATH}/issues/1/comments`, { body: "Because." })
      .reply(201, { id: 8, body: "Because." })
      .post(`${PATH}/issues/1/reactions`, { content: "eyes" })
      .reply(201, { id: 9, content: "eyes" });

    await octokit.rest.issues.get({ ...REPO, issue_number: 1 });
    await octokit.rest.issues.createComment({ ...REPO, issue_number: 1, body: "Because." });
    await octokit.rest.reactions.createForIssue({ ...REPO, issue_number: 1, content: "eyes" });
    await octokit.rest.issues.get({ ...REPO, issue_number: 1 });

    expect(scope.pendingMocks()).toEqual([]);
    expect(app.talos.cache.size).toBe(1);
  });

  it("does not keep a read that was in flight while the write went through", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    let answerRead = () => {};
    const readHeld = new Promise<void>((resolve) => (answerRead = resolve));
    let readArrived = () => {};
    const arrived = new Promise<void>((resolve) => (readArrived = resolve));
    const scope = nock(API)
      .get(`${PATH}/issues/1`)
      .once()
      .reply(async () => {
        readArrived();
        await readHeld;
        return [200, issue([])];
      })
      .post(`${PATH}/issues/1/labels`, { labels: ["bug"] })
      .reply(200, [{ name: "bug" }])
      .get(`${PATH}/issues/1`)
      .once()
      .reply(200, issue(["bug"]));

    const inFlight = octokit.rest.issues.get({ ...REPO, issue_number: 1 });
    await arrived;
    await octokit.rest.issues.addLabels({ ...REPO, issue_number: 1, labels: ["bug"] });
    answerRead();
    expect((await inFlight).data.labels).toEqual([]);
    const after = await octokit.rest.issues.get({ ...REPO, issue_number: 1 });

    expect(after.data.labels).toEqual([{ name: "bug" }]);
    expect(scope.pendingMocks()).toEqual([]);
  });
});

describe("a label written on an issue", () => {
  // Triage reads the labels as its list does (the first page of 100), then applies some of them.
  const listLabels = (octokit: Octokit) =>
    octokit.rest.issues.listLabelsForRepo({ ...REPO, per_page: 100 });
  const LABELS = [{ name: "bug" }, { name: "Docs" }];

  it("keeps the label list when every label it names is in it: the next triage reads none", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    const scope = nock(API)
      .get(`${PATH}/labels`)
      .query({ per_page: 100 })
      .once()
      .reply(200, LABELS)
      .get(`${PATH}/issues/1`)
      .once()
      .reply(200, issue([]))
      // Compared as GitHub compares label names: "docs" is the repository's "Docs".
      .post(`${PATH}/issues/1/labels`, { labels: ["bug", "docs"] })
      .reply(200, LABELS)
      .get(`${PATH}/issues/1`)
      .once()
      .reply(200, issue(["bug", "Docs"]));

    await listLabels(octokit);
    await octokit.rest.issues.get({ ...REPO, issue_number: 1 });
    await octokit.rest.issues.addLabels({ ...REPO, issue_number: 1, labels: ["bug", "docs"] });
    // The issue itself is read again; the list is served from the cache.
    const after = await octokit.rest.issues.get({ ...REPO, issue_number: 1 });
    const labels = await listLabels(octokit);

    expect(after.data.labels).toEqual([{ name: "bug" }, { name: "Docs" }]);
    expect(labels.data).toEqual(LABELS);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("reads the label list again after a label write that may have created one", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    const scope = nock(API)
      .get(`${PATH}/labels`)
      .query({ per_page: 100 })
      .once()
      .reply(200, LABELS)
      .put(`${PATH}/issues/1/labels`, { labels: [{ name: "bug" }, { name: "triaged" }] })
      .reply(200, [{ name: "bug" }, { name: "triaged" }])
      .get(`${PATH}/labels`)
      .query({ per_page: 100 })
      .once()
      .reply(200, [...LABELS, { name: "triaged" }]);

    await listLabels(octokit);
    await octokit.rest.issues.setLabels({
      ...REPO,
      issue_number: 1,
      labels: [{ name: "bug" }, { name: "triaged" }],
    });
    const labels = await listLabels(octokit);

    expect(labels.data.map((l) => l.name)).toEqual(["bug", "Docs", "triaged"]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("keeps the label list when a label is removed from an issue", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    const scope = nock(API)
      .get(`${PATH}/labels`)
      .query({ per_page: 100 })
      .once()
      .reply(200, LABELS)
      .delete(`${PATH}/issues/1/labels/new-label`)
      .reply(200, [{ name: "bug" }]);

    await listLabels(octokit);
    await octokit.rest.issues.removeLabel({ ...REPO, issue_number: 1, name: "new-label" });
    await listLabels(octokit);

    expect(scope.pendingMocks()).toEqual([]);
  });

  it("does not keep a label list read while a label write went through: none was held", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    let answerRead = () => {};
    const readHeld = new Promise<void>((resolve) => (answerRead = resolve));
    let readArrived = () => {};
    const arrived = new Promise<void>((resolve) => (readArrived = resolve));
    const scope = nock(API)
      .get(`${PATH}/labels`)
      .query({ per_page: 100 })
      .once()
      .reply(async () => {
        readArrived();
        await readHeld;
        return [200, LABELS];
      })
      .post(`${PATH}/issues/1/labels`, { labels: ["triaged"] })
      .reply(200, [{ name: "triaged" }])
      .get(`${PATH}/labels`)
      .query({ per_page: 100 })
      .once()
      .reply(200, [...LABELS, { name: "triaged" }]);

    const inFlight = listLabels(octokit);
    await arrived;
    await octokit.rest.issues.addLabels({ ...REPO, issue_number: 1, labels: ["triaged"] });
    answerRead();
    expect((await inFlight).data).toEqual(LABELS);
    const after = await listLabels(octokit);

    expect(after.data.map((l) => l.name)).toEqual(["bug", "Docs", "triaged"]);
    expect(scope.pendingMocks()).toEqual([]);
  });
});

describe("the config file read at a branch", () => {
  it("is evicted by a push to that branch that changes it", async () => {
    const app = await createTestApp();
    const octokit = await installationClient(app);
    const read = () =>
      octokit.rest.repos.getContent({ ...REPO, path: ".github/talos.yml", ref: "feature" });
    const scope = nock(API)
      .get(CONFIG)
      .query({ ref: "feature" })
      .once()
      .reply(200, { type: "file", content: "b2xk" })
      .get(CONFIG)
      .query({ ref: "feature" })
      .once()
      .reply(200, { type: "file", content: "bmV3" });
    expect(((await read()).data as { content: string }).content).toBe("b2xk");

    const payload = webhookExample("push");
    payload.ref = "refs/heads/feature";
    payload.commits = [{ added: [], removed: [], modified: [".github/talos.yml"] }];
    await app.probot.receive({ id: "push-feature", name: "push", payload } as never);

    expect(((await read()).data as { content: string }).content).toBe("bmV3");
    expect(scope.pendingMocks()).toEqual([]);
  });
});
