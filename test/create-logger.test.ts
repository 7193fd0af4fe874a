import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
// Probot's own request logger, as its server puts it in front of every request.
// Not exported by the package: imported by its path (it ships its own .d.ts).
import { httpLogger } from "../node_modules/probot/lib/server/handlers/http-logger.js";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { getSecrets, parseEnv } from "../src/config.js";
import { createSecretScrubber, MAX_LOG_LINE_BYTES } from "../src/create-logger.js";
import { createMetricsRoute } from "../src/metrics/create-metrics-route.js";
import { expectLinearTime, HOSTILE_FRAGMENTS } from "./helpers/hostile-input.js";
import { scriptedModel } from "./helpers/scripted-model.js";
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
    // The model endpoint fails with an error that quotes credentials, as some servers do: the
    // error is logged with its message, its stack and its own fields.
    const failure = Object.assign(
      new Error(
        `401 Incorrect API key provided: ${OPENAI_KEY}; proxy saw ${PAT}, ${INSTALLATION_TOKEN} and ${JWT}`,
      ),
      { status: 401, headers: { authorization: `Bearer ${OPENAI_KEY}` }, token: PAT },
    );
    const app = await createTestApp({
      logLevel: "trace",
      model: scriptedModel().respond(failure),
      env: { OPENAI_API_KEY: OPENAI_KEY, TALOS_EMBEDDING_MODEL: "local" },
    });
    const scope = githubScope();
    mockAppIdentity(scope);
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: `# ${TEST_WEBHOOK_SECRET}\ncommands: {}\n` });
    scope.post(/reactions$/).reply(201, {});
    scope.get("/repos/Codertocat/Hello-World").reply(200, { default_branch: "main" });
    // The thread for the model, then the look for an earlier reply.
    scope
      .get(/comments/)
      .query(true)
      .times(2)
      .reply(200, []);
    scope.post(/comments$/).reply(201, { id: 1 });
    const payload = loadFixture<{ comment: { body: string } }>("issue_comment.created.help.json");
    payload.comment.body = "/talos ask why?";

    await app.probot.receive({ id: "secrets-delivery", name: "issue_comment", payload } as never);

    expect(scope.pendingMocks()).toEqual([]);
    const text = app.logs.text();
    expect(text).toContain("command failed");
    expect(text).toContain("401 Incorrect API key provided: [REDACTED]");
    for (const secret of [
      OPENAI_KEY,
      PAT,
      INSTALLATION_TOKEN,
      JWT,
      TEST_WEBHOOK_SECRET,
      ...keyLines,
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toMatch(/eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}/);
  });
});

describe("secrets in a URL a client sent", () => {
  it("removes every configured secret percent-encoded and form-encoded too", () => {
    const secrets = ["metrics token 0123456789", "hook/secret+value=01", "key*with~odd(chars)!"];
    const scrub = createSecretScrubber(secrets);
    for (const secret of secrets) {
      const percent = encodeURIComponent(secret);
      const form = new URLSearchParams({ q: secret }).toString().slice("q=".length);
      expect(scrub(`GET /x?q=${percent} 401`)).toBe("GET /x?q=[REDACTED] 401");
      expect(scrub(`GET /x?q=${form} 401`)).toBe("GET /x?q=[REDACTED] 401");
    }
  });

  it("keeps TALOS_METRICS_TOKEN out of Probot's request log when a scraper sends it in the query string", async () => {
    // A token with a space, which the README says works.
    const token = "metrics token 0123456789";
    const env = parseEnv({ TALOS_METRICS_TOKEN: token });
    const logs = await captureLogs("info", getSecrets(env));
    const logRequest = httpLogger(logs.log, {});
    const route = createMetricsRoute(new Registry(), { token });
    const server: Server = createServer((req, res) => {
      logRequest(req, res);
      void route(req, res).then((served) => {
        if (!served) res.writeHead(404).end();
      });
    });
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;

    // Prometheus `params: { token: [...] }` (a common way to pass a scrape token): refused 401,
    // and Probot logs the URL as it came, `+` for the space.
    const query = new URLSearchParams({ token }).toString();
    const response = await fetch(`http://127.0.0.1:${port}/metrics?${query}`);
    expect(response.status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 100));

    const text = logs.text();
    expect(text).toContain("GET /metrics?token=[REDACTED] 401");
    for (const form of [token, encodeURIComponent(token), query.slice("token=".length)])
      expect(text).not.toContain(form);
  });
});

describe("the scrubber on hostile text", () => {
  const scrub = createSecretScrubber([OPENAI_KEY]);

  it.each([
    ["a PEM key cut short", "x -----BEGIN RSA PRIVATE KEY-----\\nMIIE abc", "x [REDACTED]"],
    [
      "a PEM header that is not a key",
      "-----BEGIN CERTIFICATE-----\nMIIB",
      "-----BEGIN CERTIFICATE-----\nMIIB",
    ],
    ["a JWT inside a longer run", `a.b-${JWT}.tail`, "a.b-[REDACTED].tail"],
    ["a JWT-like run that is not one", "eyJ-eyJ-eyJ-eyJ", "eyJ-eyJ-eyJ-eyJ"],
    ["a bearer value without digits", "Bearer abcdefghijklmnop", "Bearer abcdefghijklmnop"],
    // A URL's password, however short: no literal catches `talos`, which is everywhere else.
    [
      "a service URL's password",
      "connect redis://:talos@redis:6379 and postgres://talos:pw@db/talos",
      "connect redis://:[REDACTED]@redis:6379 and postgres://talos:[REDACTED]@db/talos",
    ],
    [
      "a URL password in a JSON string",
      '{"url":"https://u:p@h/x"}',
      '{"url":"https://u:[REDACTED]@h/x"}',
    ],
    ["a URL with a user and no password", "https://user@host/a", "https://user@host/a"],
    ["a port, then an @ in the path", "https://host:8080/a@b", "https://host:8080/a@b"],
    ["a colon and no @", "see http://a:b and c@d", "see http://a:b and c@d"],
  ])("handles %s", (_what, input, expected) => {
    expect(scrub(input)).toBe(expected);
  });

  it("scrubs two JWTs in one run, and text between runs, as one pass did", () => {
    expect(scrub(`x ${JWT}.${JWT} y,eyJ z-${JWT}`)).toBe(
      "x [REDACTED].[REDACTED] y,eyJ z-[REDACTED]",
    );
  });

  it("scrubs a line of 40 million short word runs (a 25 MB body logged three times) without a V8 fatal error", () => {
    // A global replace with a callback over some 17 million runs aborted the process (it is not
    // an exception: the test's worker dies).
    const text = "a,".repeat(40_000_000);
    expect(scrub(text).length).toBe(text.length);
  }, 60_000);

  it("takes linear time on hostile input of every shape it looks for", async () => {
    await expectLinearTime(scrub, {
      fragments: [...HOSTILE_FRAGMENTS, "://", "://a:", "://a:b@", ":@", "a:b@"],
    });
  }, 120_000);
});

describe("long log lines", () => {
  it("cuts a line over MAX_LOG_LINE_BYTES to one saying so, with its level, head and tail", async () => {
    const logs = await captureLogs("info", [OPENAI_KEY]);
    logs.log.warn({ quoted: `${OPENAI_KEY} ${"x".repeat(MAX_LOG_LINE_BYTES)}` }, "a long one");
    logs.log.info("a short one");
    await new Promise((resolve) => setImmediate(resolve));
    const lines = logs.lines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: expect.stringMatching(/^log line of \d+ bytes cut to its head and tail/),
      head: expect.stringContaining('"quoted":"[REDACTED] xxx') as unknown,
      tail: expect.stringContaining('"msg":"a long one"') as unknown,
    });
    expect(logs.text()).not.toContain(OPENAI_KEY);
    expect(logs.text().length).toBeLessThan(16 * 1024);
    expect(lines[1]).toMatchObject({ level: 30, msg: "a short one" });
  });

  it("keeps a webhook error's event to its id and name", async () => {
    const logs = await captureLogs("info");
    const error = Object.assign(new Error("signature does not match"), {
      event: { id: "d-1", name: "issues", payload: "BODY".repeat(1000) },
    });
    logs.log.error(new AggregateError([error], error.message));
    await new Promise((resolve) => setImmediate(resolve));
    expect(logs.text()).not.toContain("BODY");
    expect(logs.lines()[0]).toMatchObject({
      err: { aggregateErrors: [{ event: { id: "d-1", name: "issues" } }] },
    });
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

// A configured secret (a webhook secret or API key a person chose) that JSON escapes.
const QUOTED_SECRET = 'whsec"Quoted\\Secret-0123456789';
// A configured webhook secret or key of no known shape: only the literal scrub finds it.
const SECRET = "Webhook0Secret1Value2ABCDEFGHIJabcdefghij";

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("a cut log line's head and tail", () => {
  it("scrubs a configured secret holding a quote or backslash from the head of a cut line", async () => {
    const logs = await captureLogs("info", [QUOTED_SECRET]);
    // Short lines are scrubbed: the JSON-escaped variant is among the literals.
    logs.log.warn({ quoted: QUOTED_SECRET }, "short");
    logs.log.warn({ quoted: `${QUOTED_SECRET} ${"x".repeat(MAX_LOG_LINE_BYTES)}` }, "long");
    await tick();
    const [short, long] = logs.lines();
    expect(JSON.stringify(short)).not.toContain("Quoted");
    expect(String(long!.msg)).toMatch(/^log line of/);
    // The head is the pino line (escaped once); stringified again, the scrubber's literals
    // (raw and escaped once) no longer match it.
    expect(String(long!.head)).not.toContain("Quoted");
  });

  it("leaves no part of a secret that straddles the head's 4 KiB cut", async () => {
    const logs = await captureLogs("info", [SECRET]);
    // Find where the secret starts in the line, then place it across byte 4096.
    logs.log.warn({ q: `MARK${SECRET}` }, "probe");
    await tick();
    const probe = logs.text();
    const at = probe.indexOf("MARK") + 4;
    const pad = 4096 - at - 20; // 20 characters of the secret before the cut, 20 after
    logs.log.warn(
      { q: `MARK${"p".repeat(pad - 1)} ${SECRET} ${"x".repeat(MAX_LOG_LINE_BYTES)}` },
      "long",
    );
    await tick();
    const long = logs.lines()[1]!;
    expect(String(long.msg)).toMatch(/^log line of/);
    expect(String(long.head)).not.toContain(SECRET.slice(0, 20));
  });

  it("leaves no part of a secret that straddles the tail's 1 KiB cut", async () => {
    const logs = await captureLogs("info", [SECRET]);
    // pino's line ends `..."q":"<value>","msg":"long"}\n`: the tail is the last 1024 bytes.
    const after = '","msg":"long"}\n'.length;
    const pad = 1024 - after - 20; // 20 characters of the secret in the tail
    logs.log.warn(
      { q: `${"x".repeat(MAX_LOG_LINE_BYTES)} ${SECRET} ${"p".repeat(pad - 1)}` },
      "long",
    );
    await tick();
    const long = logs.lines()[0]!;
    expect(String(long.msg)).toMatch(/^log line of/);
    expect(String(long.tail)).toContain("pppp");
    expect(String(long.tail)).not.toContain(SECRET.slice(-20));
  });
});
