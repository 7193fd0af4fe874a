import { describe, expect, it } from "vitest";
import { createSecretScrubber } from "../src/create-logger.js";
import {
  githubScope,
  INSTALLATION_TOKEN,
  mockAppIdentity,
  mockInstallationToken,
  mockRepoConfig,
} from "./helpers/github-mocks.js";
import {
  captureLogs,
  createTestApp,
  loadFixture,
  TEST_PRIVATE_KEY,
  TEST_WEBHOOK_SECRET,
} from "./helpers/test-app.js";

const OPENAI_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
const PAT = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
const JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjEsImV4cCI6MX0.c2lnbmF0dXJlc2lnbmF0dXJl";
const keyLines = TEST_PRIVATE_KEY.split("\n").filter((line) => line.length > 20);

describe("log scrubbing", () => {
  it("removes configured secrets and credential shapes from every line", async () => {
    const logs = await captureLogs("trace", [TEST_PRIVATE_KEY, TEST_WEBHOOK_SECRET, OPENAI_KEY]);
    logs.log.info(`loaded key ${TEST_PRIVATE_KEY}`);
    logs.log.info({ env: { PRIVATE_KEY: TEST_PRIVATE_KEY.replace(/\n/g, "\\n") } }, "escaped key");
    logs.log.warn({ line: keyLines[3] }, "one line of the key");
    logs.log.error(
      { err: new Error(`signature mismatch for secret ${TEST_WEBHOOK_SECRET}`) },
      "webhook failed",
    );
    logs.log.info(
      { request: { headers: { authorization: `token ${INSTALLATION_TOKEN}` } } },
      "request",
    );
    logs.log.info({ config: { apiKey: OPENAI_KEY } }, "llm configured");
    logs.log.info(`user pasted ${PAT} and Authorization: Bearer ${JWT}`);
    logs.log.debug({ nested: { deeper: { value: `openai ${OPENAI_KEY}` } } }, "nested");

    const text = logs.text();
    expect(logs.lines()).toHaveLength(8);
    for (const secret of [
      TEST_WEBHOOK_SECRET,
      OPENAI_KEY,
      INSTALLATION_TOKEN,
      PAT,
      JWT,
      ...keyLines,
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toContain("BEGIN PRIVATE KEY-----\\n");
    expect(text).toContain("[REDACTED]");
  });

  it("leaves ordinary text alone", () => {
    const scrub = createSecretScrubber(["s3cret-value"]);
    const text = "token budget exceeded after 12 steps; see issue #42";
    expect(scrub(text)).toBe(text);
  });

  it("keeps secrets out of the log of a whole event handled at trace level", async () => {
    const app = await createTestApp({ logLevel: "trace" });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: `# ${TEST_WEBHOOK_SECRET}\ncommands: {}\n` });
    scope.post(/reactions$/).reply(201, {});
    scope
      .get(/comments/)
      .query(true)
      .reply(200, []);
    scope.post(/comments$/).reply(201, { id: 1 });

    await app.probot.receive({
      id: "secrets-delivery",
      name: "issue_comment",
      payload: loadFixture("issue_comment.created.help.json"),
    } as never);

    expect(scope.pendingMocks()).toEqual([]);
    const text = app.logs.text();
    expect(text).toContain("command answered");
    for (const secret of [INSTALLATION_TOKEN, TEST_WEBHOOK_SECRET, ...keyLines]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toMatch(/eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}/);
  });
});

describe("event log lines", () => {
  it("carry the delivery id, event name, installation and repository", async () => {
    const app = await createTestApp({ logLevel: "debug" });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope);
    scope.post(/reactions$/).reply(201, {});
    scope
      .get(/comments/)
      .query(true)
      .reply(200, []);
    scope.post(/comments$/).reply(201, { id: 1 });

    await app.probot.receive({
      id: "fields-delivery",
      name: "issue_comment",
      payload: loadFixture("issue_comment.created.help.json"),
    } as never);

    const eventLines = app.logs.lines().filter((l) => l.id === "fields-delivery");
    // Talos's own lines and Probot's per-request lines made while handling the event.
    expect(eventLines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        "command answered",
        expect.stringMatching(/^GitHub request: POST .*\/reactions - 201$/),
      ]),
    );
    for (const line of eventLines) {
      expect(line).toMatchObject({
        id: "fields-delivery",
        event: "issue_comment.created",
        installation: 2,
        repository: "Codertocat/Hello-World",
      });
    }
  });
});
