import { describe, expect, it } from "vitest";
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
