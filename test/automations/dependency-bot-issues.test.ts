import { describe, expect, it } from "vitest";
import { mockAppIdentity, mockIssueNow } from "../helpers/github-mocks.js";
import { startTriageApp } from "../helpers/start-triage-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const HELLO_WORLD = 186853002;

describe("a new issue opened by a dependency bot's user account", () => {
  // Self-hosted Renovate (and the old Dependabot) post as plain user accounts: `type: "User"`,
  // no `[bot]` in the login. Their pull requests get no automatic work (skipReason); neither
  // may their issues, such as Renovate's "Dependency Dashboard", which it edits all day.
  it.each(["renovate-bot", "Renovate", "dependabot"])(
    "%s: is remembered, and neither triaged nor given a similar-issues comment",
    async (login) => {
      const { model, app, scope } = await startTriageApp();
      const account = { login, id: 2740337, type: "User" };
      const payload = webhookExample("issues", "opened");
      Object.assign(payload.issue, {
        number: 31,
        title: "Dependency Dashboard",
        body: "This issue lists Renovate updates and detected dependencies.",
        user: account,
        comments: 0,
      });
      Object.assign(payload, { sender: account });

      // No GitHub request but the token and the config is mocked: a label read, an identity
      // read or a comment would fail the job.
      await app.probot.receive({ id: `dashboard-${login}`, name: "issues", payload } as never);

      expect(scope.pendingMocks()).toEqual([]);
      expect(model.calls).toHaveLength(0);
      const messages = app.logs.lines().map((l) => String(l.msg));
      // Neither a similar-issues search nor a triage (its first step reads the app's identity)
      // ran, and the job ended well.
      expect(messages).not.toContain("similar issues");
      expect(messages.filter((m) => m.startsWith("GitHub request:"))).toEqual([
        "GitHub request: POST https://api.github.com/app/installations/2/access_tokens - 201",
        "GitHub request: GET https://api.github.com/repos/Codertocat/Hello-World/contents/.github%2Ftalos.yml - 200",
      ]);
      expect(messages.filter((m) => m.startsWith("job ") && m !== "job started")).toEqual([
        "job finished",
      ]);
      const memory = await app.talos.memory.open({
        installation: 2,
        repository: HELLO_WORLD,
        name: "Codertocat/Hello-World",
      });
      expect((await memory.get("issue-31"))?.text).toContain("Dependency Dashboard");
    },
  );
});

describe("a new issue opened through a GitHub App on someone's behalf", () => {
  // The sender is the person the app acts for (type User); only the issue's
  // performed_via_github_app tells. An app may be an automation, an AI agent say, that anyone's
  // text drives: as for a comment posted so, no automatic work (it had been triaged).
  it("is remembered, and neither triaged nor given a similar-issues comment", async () => {
    const { model, app, scope } = await startTriageApp();
    const payload = webhookExample("issues", "opened");
    Object.assign(payload.issue, {
      number: 32,
      title: "Crash on start",
      body: "Opened by an agent.",
      comments: 0,
      performed_via_github_app: { id: 99, slug: "acme-coding-agent", name: "Acme Agent" },
    });
    expect(payload.sender.type).toBe("User");

    await app.probot.receive({ id: "via-app", name: "issues", payload } as never);

    expect(scope.pendingMocks()).toEqual([]);
    expect(model.calls).toHaveLength(0);
    const messages = app.logs.lines().map((l) => String(l.msg));
    expect(messages).toContain("no automatic work: it was opened through a GitHub App");
    expect(messages.filter((m) => m.startsWith("GitHub request:"))).toHaveLength(2);
    const memory = await app.talos.memory.open({
      installation: 2,
      repository: HELLO_WORLD,
      name: "Codertocat/Hello-World",
    });
    expect((await memory.get("issue-32"))?.text).toContain("Crash on start");
  });

  it("with performed_via_github_app null, as GitHub sends most issues: triaged", async () => {
    const { model, app, scope } = await startTriageApp();
    model.respondWithTools([
      { name: "propose_labels", args: { labels: ["bug"], reason: "it crashes" } },
    ]);
    model.respond("A bug.");
    const repo = "/repos/Codertocat/Hello-World";
    mockAppIdentity(scope);
    scope.get(`${repo}/issues/1/events`).query(true).reply(200, []);
    scope
      .get(`${repo}/labels`)
      .query(true)
      .reply(200, [{ name: "bug", description: "Broken" }]);
    scope.get(repo).reply(200, { full_name: "Codertocat/Hello-World", default_branch: "main" });
    scope.get(`${repo}/issues/1/comments`).query(true).reply(200, []);
    let labelled: unknown;
    scope.post(`${repo}/issues/1/labels`, (body) => ((labelled = body), true)).reply(200, []);
    scope.post(`${repo}/issues/1/comments`).reply(201, { id: 501 });
    const payload = webhookExample("issues", "opened");
    Object.assign(payload.issue, { comments: 0, performed_via_github_app: null });
    mockIssueNow(scope, payload.issue);

    await app.probot.receive({ id: "not-via-app", name: "issues", payload } as never);

    expect(model.calls.length).toBeGreaterThan(0);
    expect(labelled).toEqual({ labels: ["bug"] });
    expect(scope.pendingMocks()).toEqual([]);
  });
});
