import { createPublicKey, createSign, generateKeyPairSync } from "node:crypto";
import { ProbotOctokit } from "probot";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  startGitHubStandIn,
  type GitHubStandIn,
  type StandInOptions,
  type StandInPull,
  type StandInPullFile,
} from "./github-stand-in.js";
import { TEST_APP_ID, TEST_PRIVATE_KEY } from "./test-app.js";

const HELLO = "Codertocat/Hello-World";
const OTHER = "Octo-Org/Other-Repo";
const ACCESS = { 2: [HELLO], 3: [OTHER] };
const OTHER_KEY = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
}).privateKey;

/** An app JWT as Octokit makes one: RS256 over `{ iat, exp, iss }`. */
function appJwt(
  claims: Record<string, unknown> = {},
  key: string = TEST_PRIVATE_KEY,
  alg = "RS256",
): string {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${encode({ alg, typ: "JWT" })}.${encode({
    iat: now - 30,
    exp: now + 570,
    iss: TEST_APP_ID,
    ...claims,
  })}`;
  const signature = createSign("RSA-SHA256").update(unsigned).sign(key).toString("base64url");
  return `${unsigned}.${signature}`;
}

describe("the GitHub stand-in", () => {
  let github: GitHubStandIn;

  async function start(options: StandInOptions = {}) {
    github = await startGitHubStandIn({
      publicKey: createPublicKey(TEST_PRIVATE_KEY),
      access: ACCESS,
      ...options,
    });
  }
  beforeEach(() => start());
  afterEach(() => github.close());

  function call(
    method: string,
    path: string,
    authorization?: string,
    body?: unknown,
  ): Promise<Response> {
    return fetch(`${github.url}${path}`, {
      method,
      headers: {
        accept: "application/vnd.github+json",
        ...(authorization ? { authorization } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  /** Asks the stand-in for an installation token, as Probot does. */
  async function tokenOf(installation: number): Promise<string> {
    const res = await call(
      "POST",
      `/app/installations/${installation}/access_tokens`,
      `Bearer ${appJwt()}`,
    );
    expect(res.status).toBe(201);
    return ((await res.json()) as { token: string }).token;
  }

  function octokit(token: string, baseUrl = github.url) {
    return new ProbotOctokit({
      auth: { token },
      baseUrl,
      throttle: { enabled: false },
      retry: { enabled: false },
    });
  }

  const seedThread = (count: number, repo = HELLO, number = 1) =>
    Array.from({ length: count }, (_, i) =>
      github.addComment(repo, number, { body: `comment ${i + 1}`, login: "Codertocat" }),
    );

  describe("app authentication", () => {
    it("serves GET /app and issues installation tokens for the app's signed JWT", async () => {
      const app = await call("GET", "/app", `Bearer ${appJwt()}`);
      expect(app.status).toBe(200);
      expect(await app.json()).toMatchObject({ id: TEST_APP_ID, slug: "talos-bot" });
      expect(await tokenOf(2)).toBe("ghs_standin2token000000000000");
      expect(await tokenOf(3)).toBe("ghs_standin3token000000000000");
      expect([...github.tokens]).toEqual([
        ["ghs_standin2token000000000000", 2],
        ["ghs_standin3token000000000000", 3],
      ]);
    });

    it("refuses a missing, malformed, foreign, expired or unsigned JWT with 401", async () => {
      const now = Math.floor(Date.now() / 1000);
      const unsigned = appJwt().replace(/\.[^.]+$/, ".");
      const refused = [
        undefined,
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        `Bearer ${appJwt({ iss: 999 })}`,
        `Bearer ${appJwt({ exp: now - 1 })}`,
        `Bearer ${appJwt({}, OTHER_KEY)}`,
        `Bearer ${appJwt({}, TEST_PRIVATE_KEY, "HS256")}`,
        `Bearer ${unsigned}`,
      ];
      for (const authorization of refused) {
        for (const [method, path] of [
          ["GET", "/app"],
          ["POST", "/app/installations/2/access_tokens"],
        ] as const) {
          const res = await call(method, path, authorization);
          expect(res.status, `${method} ${path} with ${authorization}`).toBe(401);
          expect(await res.json()).toEqual({ message: "A JSON web token could not be decoded" });
        }
      }
      expect(github.tokens.size).toBe(0);
    });

    it("refuses an installation token on /app routes", async () => {
      const token = await tokenOf(2);
      expect((await call("GET", "/app", `token ${token}`)).status).toBe(401);
      expect(
        (await call("POST", "/app/installations/3/access_tokens", `token ${token}`)).status,
      ).toBe(401);
    });

    it("checks only the JWT's claims when it was given no public key", async () => {
      await github.close();
      await start({ publicKey: undefined });
      expect((await call("GET", "/app", `Bearer ${appJwt({}, OTHER_KEY)}`)).status).toBe(200);
      expect((await call("GET", "/app", `Bearer ${appJwt({ iss: 2 }, OTHER_KEY)}`)).status).toBe(
        401,
      );
    });

    it("issues no token for an installation the access map does not know", async () => {
      const res = await call("POST", "/app/installations/4/access_tokens", `Bearer ${appJwt()}`);
      expect(res.status).toBe(404);
      expect(github.tokens.size).toBe(0);
    });
  });

  describe("installation tokens", () => {
    it("accept an issued token as `token` or `Bearer`", async () => {
      const token = await tokenOf(2);
      for (const authorization of [`token ${token}`, `Bearer ${token}`]) {
        expect((await call("GET", `/repos/${HELLO}/issues/1/comments`, authorization)).status).toBe(
          200,
        );
      }
    });

    it("refuse a token that was never issued with 401 Bad credentials", async () => {
      // The stand-in's own format, for an installation that was never given a token.
      for (const authorization of [
        "token ghs_standin2token000000000000",
        "Bearer ghs_standin2token000000000000",
        "token ghs_somethingelse",
      ]) {
        const read = await call("GET", `/repos/${HELLO}`, authorization);
        expect(read.status).toBe(401);
        expect(await read.json()).toEqual({ message: "Bad credentials" });
        const write = await call("POST", `/repos/${HELLO}/issues/1/comments`, authorization, {
          body: "hi",
        });
        expect(write.status).toBe(401);
      }
      expect(github.comments.size).toBe(0);
    });

    it("refuse the app's JWT on repository routes", async () => {
      const jwt = `Bearer ${appJwt()}`;
      const read = await call("GET", `/repos/${HELLO}/issues/1/comments`, jwt);
      expect(read.status).toBe(401);
      expect(await read.json()).toEqual({ message: "Bad credentials" });
      expect(
        (await call("POST", `/repos/${HELLO}/issues/1/comments`, jwt, { body: "hi" })).status,
      ).toBe(401);
      expect((await call("GET", `/search/issues?q=crash`, jwt)).status).toBe(401);
      expect(github.comments.size).toBe(0);
    });
  });

  describe("installation scope", () => {
    it("answers 404 to a token reading or writing another installation's repository", async () => {
      const token3 = `token ${await tokenOf(3)}`;
      seedThread(2);
      github.setFile(HELLO, "README.md", "hello");
      for (const path of [
        `/repos/${HELLO}`,
        `/repos/${HELLO}/issues/1/comments`,
        `/repos/${HELLO}/contents/README.md`,
        `/repos/${HELLO}/labels`,
      ]) {
        const res = await call("GET", path, token3);
        expect(res.status, path).toBe(404);
        expect(await res.json()).toEqual({ message: "Not Found" });
      }
      const writes = [
        call("POST", `/repos/${HELLO}/issues/1/comments`, token3, { body: "hi" }),
        call("PATCH", `/repos/${HELLO}/issues/comments/5000000`, token3, { body: "edited" }),
        call("POST", `/repos/${HELLO}/issues/comments/5000000/reactions`, token3, {
          content: "eyes",
        }),
        call("POST", `/repos/${HELLO}/issues/1/labels`, token3, { labels: ["bug"] }),
      ];
      for (const res of await Promise.all(writes)) expect(res.status).toBe(404);
      expect(github.comments.get(`${HELLO}#1`)?.map((c) => c.body)).toEqual([
        "comment 1",
        "comment 2",
      ]);
      expect(github.reactions).toEqual([]);
    });

    it("lets a token use its own repositories, whatever the case of the name", async () => {
      const token2 = `token ${await tokenOf(2)}`;
      expect((await call("GET", `/repos/${HELLO}`, token2)).status).toBe(200);
      expect((await call("GET", "/repos/codertocat/HELLO-WORLD/labels", token2)).status).toBe(200);
      const token3 = `token ${await tokenOf(3)}`;
      const posted = await call("POST", `/repos/${OTHER}/issues/1/comments`, token3, {
        body: "hi",
      });
      expect(posted.status).toBe(201);
      expect((await call("GET", `/repos/${OTHER}`, token2)).status).toBe(404);
    });

    it("lets every installation use every repository when no access map is given", async () => {
      await github.close();
      await start({ access: undefined });
      const token3 = `token ${await tokenOf(3)}`;
      expect((await call("GET", `/repos/${HELLO}`, token3)).status).toBe(200);
      expect(
        (await call("POST", `/repos/${HELLO}/issues/1/comments`, token3, { body: "hi" })).status,
      ).toBe(201);
      expect(await tokenOf(7)).toBe("ghs_standin7token000000000000");
    });
  });

  describe("anonymous requests", () => {
    it("may read public repositories, of any installation, but not write", async () => {
      seedThread(1, OTHER);
      expect((await call("GET", `/repos/${HELLO}`)).status).toBe(200);
      const read = await call("GET", `/repos/${OTHER}/issues/1/comments`);
      expect(read.status).toBe(200);
      expect(await read.json()).toHaveLength(1);
      for (const [method, path, body] of [
        ["POST", `/repos/${HELLO}/issues/1/comments`, { body: "hi" }],
        ["PATCH", `/repos/${OTHER}/issues/comments/5000000`, { body: "edited" }],
        ["POST", `/repos/${HELLO}/issues/comments/1/reactions`, { content: "eyes" }],
      ] as const) {
        const res = await call(method, path, undefined, body);
        expect(res.status).toBe(401);
        expect(await res.json()).toEqual({ message: "Requires authentication" });
      }
      expect(github.comments.get(`${OTHER}#1`)?.[0]?.body).toBe("comment 1");
      expect(github.comments.has(`${HELLO}#1`)).toBe(false);
    });
  });

  describe("pagination", () => {
    const COMMENTS = `/repos/${HELLO}/issues/1/comments`;

    it("splits 150 comments into 2 pages of per_page=100, with GitHub's Link headers", async () => {
      const token = `token ${await tokenOf(2)}`;
      const seeded = seedThread(150);
      const base = github.url;

      const first = await call("GET", `${COMMENTS}?per_page=100`, token);
      const firstPage = (await first.json()) as Array<{ id: number; body: string }>;
      expect(firstPage.map((c) => c.id)).toEqual(seeded.slice(0, 100).map((c) => c.id));
      expect(first.headers.get("link")).toBe(
        `<${base}${COMMENTS}?per_page=100&page=2>; rel="next", ` +
          `<${base}${COMMENTS}?per_page=100&page=2>; rel="last"`,
      );

      const second = await call("GET", `${COMMENTS}?per_page=100&page=2`, token);
      const secondPage = (await second.json()) as Array<{ id: number; body: string }>;
      expect(secondPage).toHaveLength(50);
      expect(secondPage.map((c) => c.id)).toEqual(seeded.slice(100).map((c) => c.id));
      expect(secondPage[0]).toMatchObject({
        body: "comment 101",
        user: { login: "Codertocat", type: "User" },
        created_at: expect.any(String),
        updated_at: expect.any(String),
      });
      expect(second.headers.get("link")).toBe(
        `<${base}${COMMENTS}?per_page=100&page=1>; rel="prev", ` +
          `<${base}${COMMENTS}?per_page=100&page=1>; rel="first"`,
      );
    });

    it("gives prev, next, last and first on a middle page, 30 a page by default", async () => {
      seedThread(150);
      const res = await call("GET", `${COMMENTS}?page=3`);
      const page = (await res.json()) as Array<{ body: string }>;
      expect(page.map((c) => c.body)).toEqual(
        Array.from({ length: 30 }, (_, i) => `comment ${61 + i}`),
      );
      const url = (n: number) => `${github.url}${COMMENTS}?page=${n}`;
      expect(res.headers.get("link")).toBe(
        `<${url(2)}>; rel="prev", <${url(4)}>; rel="next", <${url(5)}>; rel="last", <${url(1)}>; rel="first"`,
      );
      // per_page is at most 100.
      const capped = await call("GET", `${COMMENTS}?per_page=500`);
      expect(await capped.json()).toHaveLength(100);
    });

    it("sends no Link header when everything fits in one page", async () => {
      seedThread(100);
      const res = await call("GET", `${COMMENTS}?per_page=100`);
      expect(await res.json()).toHaveLength(100);
      expect(res.headers.get("link")).toBeNull();
    });

    it("keeps the host, the /api/v3 prefix and the other query parameters in its links", async () => {
      seedThread(3);
      seedThread(150, HELLO, 2);
      const since = github.comments.get(`${HELLO}#2`)![0]!.updated_at;
      const path = `/api/v3/repos/${HELLO}/issues/2/comments`;
      const res = await fetch(
        `http://localhost:${new URL(github.url).port}${path}?since=${since}&per_page=100`,
      );
      expect(await res.json()).toHaveLength(100);
      const params = new URLSearchParams({ since, per_page: "100", page: "2" });
      const next = `http://localhost:${new URL(github.url).port}${path}?${params}`;
      expect(res.headers.get("link")).toBe(`<${next}>; rel="next", <${next}>; rel="last"`);
      expect(github.requests.at(-1)).toMatchObject({ path: `/repos/${HELLO}/issues/2/comments` });
    });

    it("filters on updated_at >= since before paginating", async () => {
      const token = `token ${await tokenOf(2)}`;
      const seeded = seedThread(5);
      const edited = await call(
        "PATCH",
        `/repos/${HELLO}/issues/comments/${seeded[1]!.id}`,
        token,
        {
          body: "edited",
        },
      );
      expect(edited.status).toBe(200);
      const since = seeded[4]!.updated_at;
      const res = await call("GET", `${COMMENTS}?since=${encodeURIComponent(since)}`);
      expect(((await res.json()) as Array<{ body: string }>).map((c) => c.body)).toEqual([
        "edited",
        "comment 5",
      ]);
    });

    it("is followed by Octokit's paginate, at the root and under /api/v3", async () => {
      const token = await tokenOf(2);
      seedThread(150);
      for (const baseUrl of [github.url, `${github.url}/api/v3`]) {
        const before = github.requests.length;
        const client = octokit(token, baseUrl);
        const all = await client.paginate(client.rest.issues.listComments, {
          owner: "Codertocat",
          repo: "Hello-World",
          issue_number: 1,
          per_page: 100,
        });
        expect(all.map((c) => c.body)).toEqual(
          Array.from({ length: 150 }, (_, i) => `comment ${i + 1}`),
        );
        expect(github.requests.slice(before).map((r) => r.query)).toEqual([
          "?per_page=100",
          "?per_page=100&page=2",
        ]);
      }
    });
  });

  describe("search and issue lists", () => {
    beforeEach(() => {
      const add = (
        repo: string,
        number: number,
        title: string,
        state = "open",
        pr = false,
        body = "",
      ) =>
        github.issues.set(`${repo}#${number}`, {
          number,
          title,
          body,
          state,
          user: { login: "Codertocat" },
          labels: number === 1 ? [{ name: "bug" }] : [],
          ...(pr ? { pull_request: {} } : {}),
        });
      add(HELLO, 1, "Crash on save", "open", false, "It crashes on Windows.");
      add(HELLO, 2, "Fix the crash on save", "open", true);
      add(HELLO, 3, "Dark mode", "closed", false, "Please add a crash-free dark mode.");
      add(HELLO, 4, "Old crash", "closed");
      add(OTHER, 1, "Crash at start", "open", false, "windows too");
      add("someone-else/secret-repo", 9, "Crash everywhere");
    });

    type SearchBody = { total_count: number; incomplete_results: boolean; items: any[] };
    const search = async (q: string, authorization?: string, extra = "") => {
      const res = await call(
        "GET",
        `/search/issues?q=${encodeURIComponent(q)}${extra}`,
        authorization,
      );
      return { res, body: (await res.json()) as SearchBody };
    };
    const found = (body: SearchBody) =>
      body.items.map((i: { repository_url: string; number: number }) => {
        const repo = i.repository_url.replace(/^.*\/repos\//, "");
        return `${repo}#${i.number}`;
      });

    it("finds issues of the named repositories by words in the title or body", async () => {
      const { res, body } = await search(`crash windows repo:${HELLO} repo:${OTHER}`);
      expect(res.status).toBe(200);
      expect(body).toMatchObject({ total_count: 2, incomplete_results: false });
      expect(found(body)).toEqual([`${HELLO}#1`, `${OTHER}#1`]);
      expect(body.items[0]).toEqual({
        number: 1,
        title: "Crash on save",
        state: "open",
        body: "It crashes on Windows.",
        html_url: `https://github.com/${HELLO}/issues/1`,
        repository_url: `${github.url}/repos/${HELLO}`,
        user: { login: "Codertocat" },
        labels: [{ name: "bug", description: null }],
        score: 1,
      });
    });

    it("filters on state, is:issue and is:pr, and searches every repository without repo:", async () => {
      expect(found((await search(`crash repo:${HELLO} state:open`)).body)).toEqual([
        `${HELLO}#2`,
        `${HELLO}#1`,
      ]);
      expect(found((await search(`crash repo:${HELLO} state:closed`)).body)).toEqual([
        `${HELLO}#4`,
        `${HELLO}#3`,
      ]);
      const prs = (await search(`crash repo:${HELLO} is:pr`)).body;
      expect(found(prs)).toEqual([`${HELLO}#2`]);
      expect(prs.items[0]).toMatchObject({
        pull_request: {},
        html_url: `https://github.com/${HELLO}/pull/2`,
      });
      expect(found((await search(`crash repo:${HELLO} is:issue is:open`)).body)).toEqual([
        `${HELLO}#1`,
      ]);
      expect(found((await search(`"crash on save"`)).body)).toEqual([`${HELLO}#2`, `${HELLO}#1`]);
      expect((await search("crash")).body.total_count).toBe(6);
    });

    it("keeps an installation's search to its repositories, and refuses naming another's", async () => {
      const token3 = `token ${await tokenOf(3)}`;
      expect(found((await search("crash", token3)).body)).toEqual([`${OTHER}#1`]);
      const refused = await search(`crash repo:${HELLO}`, token3);
      expect(refused.res.status).toBe(422);
      expect(refused.body).toMatchObject({ message: "Validation Failed" });
    });

    it("paginates search results, and keeps /api/v3 in repository_url", async () => {
      const token = await tokenOf(2);
      const first = await search("crash", undefined, "&per_page=2");
      expect(first.body.total_count).toBe(6);
      expect(first.body.items).toHaveLength(2);
      expect(first.res.headers.get("link")).toContain(
        `<${github.url}/search/issues?q=crash&per_page=2&page=2>; rel="next"`,
      );
      const client = octokit(token, `${github.url}/api/v3`);
      const items = await client.paginate(client.rest.search.issuesAndPullRequests, {
        q: `crash repo:${HELLO}`,
        per_page: 3,
      });
      expect(items.map((i) => i.number)).toEqual([4, 3, 2, 1]);
      expect(items[0]?.repository_url).toBe(`${github.url}/api/v3/repos/${HELLO}`);
    });

    it("lists a repository's issues newest first, open by default", async () => {
      const list = async (query = "") => {
        const res = await call("GET", `/repos/${HELLO}/issues${query}`);
        return ((await res.json()) as Array<{ number: number }>).map((i) => i.number);
      };
      expect(await list()).toEqual([2, 1]);
      expect(await list("?state=closed")).toEqual([4, 3]);
      expect(await list("?state=all")).toEqual([4, 3, 2, 1]);
      const res = await call("GET", `/repos/${HELLO}/issues?state=all&per_page=3&page=2`);
      expect(((await res.json()) as Array<{ number: number }>).map((i) => i.number)).toEqual([1]);
      expect(res.headers.get("link")).toBe(
        `<${github.url}/repos/${HELLO}/issues?state=all&per_page=3&page=1>; rel="prev", ` +
          `<${github.url}/repos/${HELLO}/issues?state=all&per_page=3&page=1>; rel="first"`,
      );
    });
  });

  describe("labels", () => {
    it("serves names with their descriptions, and paginates them", async () => {
      github.labels.set(HELLO, [
        "bug",
        { name: "question", description: "Further information is requested" },
        { name: "wontfix", description: null },
      ]);
      const res = await call("GET", `/repos/${HELLO}/labels`);
      expect(await res.json()).toEqual([
        { id: 1, name: "bug", description: null },
        { id: 2, name: "question", description: "Further information is requested" },
        { id: 3, name: "wontfix", description: null },
      ]);
      const token = await tokenOf(2);
      github.labels.set(
        OTHER,
        Array.from({ length: 120 }, (_, i) => ({ name: `l${i}`, description: `label ${i}` })),
      );
      const client = octokit(await tokenOf(3));
      const all = await client.paginate(client.rest.issues.listLabelsForRepo, {
        owner: "Octo-Org",
        repo: "Other-Repo",
        per_page: 100,
      });
      expect(all).toHaveLength(120);
      expect(all[119]).toMatchObject({ name: "l119", description: "label 119" });

      github.issues.set(`${HELLO}#1`, {
        number: 1,
        title: "t",
        body: "",
        state: "open",
        user: { login: "Codertocat" },
        labels: [{ name: "bug" }],
      });
      const added = await call("POST", `/repos/${HELLO}/issues/1/labels`, `token ${token}`, {
        labels: ["question"],
      });
      expect(added.status).toBe(200);
      expect(await added.json()).toEqual([
        { id: 1, name: "bug", description: null },
        { id: 2, name: "question", description: "Further information is requested" },
      ]);
      expect(github.issues.get(`${HELLO}#1`)?.labels).toEqual([
        { name: "bug" },
        { name: "question" },
      ]);
    });
  });

  describe("pull requests", () => {
    const HEAD = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
    const BASE = "9049f1265b7d61be4a8904a9a27120d2064dab3b";
    // Lines 10-12 and 40-41 of the new file are on the diff, in two hunks.
    const PATCH = [
      "@@ -10,2 +10,3 @@ function save() {",
      "   const file = open();",
      "-  write(file);",
      "+  write(file, { sync: true });",
      "+  close(file);",
      "@@ -38,1 +40,2 @@ function load() {",
      "   return read();",
      "+  // cached",
    ].join("\n");
    const file = (i: number, patch = PATCH): StandInPullFile => ({
      filename: `src/file-${i}.ts`,
      status: "modified",
      additions: 3,
      deletions: 1,
      changes: 4,
      patch,
    });
    const pull = (files: StandInPullFile[], extra: Partial<StandInPull> = {}): StandInPull => ({
      number: 7,
      title: "Sync writes",
      body: "Fixes #1",
      state: "open",
      draft: false,
      user: { login: "octocat" },
      head: { sha: HEAD, ref: "sync-writes" },
      base: { sha: BASE, ref: "main" },
      files,
      ...extra,
    });
    const PULL = `/repos/${HELLO}/pulls/7`;
    const comment = { path: "src/file-1.ts", line: 11, side: "RIGHT", body: "Close it too?" };

    it("serves a pull request, and the issue it also is", async () => {
      github.setPull(HELLO, pull([file(1), file(2)], { draft: true }));
      const res = await call("GET", PULL);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        number: 7,
        title: "Sync writes",
        body: "Fixes #1",
        state: "open",
        draft: true,
        user: { login: "octocat", type: "User" },
        html_url: `https://github.com/${HELLO}/pull/7`,
        head: { sha: HEAD, ref: "sync-writes" },
        base: { sha: BASE, ref: "main" },
        changed_files: 2,
        additions: 6,
        deletions: 2,
      });
      expect((await call("GET", `/repos/${HELLO}/pulls/8`)).status).toBe(404);

      const issue = await call("GET", `/repos/${HELLO}/issues/7`);
      expect(await issue.json()).toMatchObject({
        number: 7,
        html_url: `https://github.com/${HELLO}/pull/7`,
        pull_request: { url: `${github.url}${PULL}` },
      });
      const token = `token ${await tokenOf(2)}`;
      const posted = await call("POST", `/repos/${HELLO}/issues/7/comments`, token, { body: "hi" });
      expect(posted.status).toBe(201);
      expect(github.comments.get(`${HELLO}#7`)?.map((c) => c.body)).toEqual(["hi"]);
    });

    it("lists 350 files in 4 pages of 100, and never more than GitHub's 3,000", async () => {
      const files = Array.from({ length: 350 }, (_, i) => file(i));
      github.setPull(HELLO, pull(files));
      const first = await call("GET", `${PULL}/files?per_page=100`);
      expect(first.headers.get("link")).toBe(
        `<${github.url}${PULL}/files?per_page=100&page=2>; rel="next", ` +
          `<${github.url}${PULL}/files?per_page=100&page=4>; rel="last"`,
      );
      const client = octokit(await tokenOf(2));
      const listed = await client.paginate(client.rest.pulls.listFiles, {
        owner: "Codertocat",
        repo: "Hello-World",
        pull_number: 7,
        per_page: 100,
      });
      expect(listed.map((f) => f.filename)).toEqual(files.map((f) => f.filename));
      expect(listed[0]).toEqual(files[0]);
      const pages = github.requests.filter((r) => r.path === `${PULL}/files`).map((r) => r.query);
      expect(pages.slice(1)).toEqual([
        "?per_page=100",
        "?per_page=100&page=2",
        "?per_page=100&page=3",
        "?per_page=100&page=4",
      ]);
      expect(github.count("GET", `${PULL}/files`)).toBe(5);

      github.setPull(HELLO, pull(Array.from({ length: 3_050 }, (_, i) => file(i))));
      expect(await (await call("GET", PULL)).json()).toMatchObject({ changed_files: 3_050 });
      const capped = await client.paginate(client.rest.pulls.listFiles, {
        owner: "Codertocat",
        repo: "Hello-World",
        pull_number: 7,
        per_page: 100,
      });
      expect(capped).toHaveLength(3_000);
    });

    it("compares two commits, 300 files at most, all on the first page", async () => {
      const files = Array.from({ length: 350 }, (_, i) => file(i));
      github.setComparison(HELLO, BASE, HEAD, { status: "ahead", files });
      const compare = `/repos/${HELLO}/compare/${BASE}...${HEAD}`;
      const res = await call("GET", compare);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { files: StandInPullFile[] };
      expect(body).toMatchObject({
        status: "ahead",
        ahead_by: 1,
        behind_by: 0,
        total_commits: 1,
        commits: [],
        merge_base_commit: { sha: BASE },
      });
      expect(body.files).toHaveLength(300);
      // Paging parameters page the commits; the files stay on page 1.
      const paged = async (query: string) =>
        ((await (await call("GET", `${compare}${query}`)).json()) as typeof body).files.length;
      expect(await paged("?per_page=1&page=1")).toBe(300);
      expect(await paged("?per_page=1&page=2")).toBe(0);

      const client = octokit(await tokenOf(2));
      const { data } = await client.rest.repos.compareCommitsWithBasehead({
        owner: "codertocat",
        repo: "hello-world",
        basehead: `${BASE}...${HEAD}`,
      });
      expect(data.status).toBe("ahead");
    });

    it("answers 404 to a comparison from a commit it does not have", async () => {
      github.setComparison(HELLO, BASE, HEAD, { status: "ahead", files: [file(1)] });
      const res = await call("GET", `/repos/${HELLO}/compare/${"0".repeat(40)}...${HEAD}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ message: "Not Found" });
      expect((await call("GET", `/repos/${OTHER}/compare/${BASE}...${HEAD}`)).status).toBe(404);
    });

    it("creates reviews with an installation token, and lists them", async () => {
      github.setPull(HELLO, pull([file(1), file(2)]));
      const review = {
        commit_id: HEAD,
        body: "Two notes.",
        event: "COMMENT",
        comments: [
          comment,
          { path: "src/file-2.ts", start_line: 10, line: 12, side: "RIGHT", body: "Range." },
          { path: "src/file-2.ts", line: 11, side: "LEFT", body: "Removed line." },
        ],
      };
      const anonymous = await call("POST", `${PULL}/reviews`, undefined, review);
      expect(anonymous.status).toBe(401);

      const token = await tokenOf(2);
      const res = await call("POST", `${PULL}/reviews`, `token ${token}`, review);
      expect(res.status).toBe(200);
      const created = (await res.json()) as { id: number };
      expect(created).toEqual({
        id: expect.any(Number),
        user: { login: "talos-bot[bot]", type: "Bot" },
        body: "Two notes.",
        state: "COMMENTED",
        commit_id: HEAD,
        html_url: `https://github.com/${HELLO}/pull/7#pullrequestreview-${created.id}`,
        submitted_at: expect.any(String),
      });
      expect(github.reviews.get(`${HELLO}#7`)?.[0]?.comments).toEqual(review.comments);
      // Without commit_id, the head; without an event, a pending review.
      const pending = await call("POST", `${PULL}/reviews`, `token ${token}`, { body: "Draft." });
      const pendingJson = (await pending.json()) as Record<string, unknown>;
      expect(pendingJson).toMatchObject({ state: "PENDING", commit_id: HEAD });
      expect(pendingJson).not.toHaveProperty("submitted_at");

      const client = octokit(token);
      const listed = await client.paginate(client.rest.pulls.listReviews, {
        owner: "Codertocat",
        repo: "Hello-World",
        pull_number: 7,
        per_page: 1,
      });
      expect(listed.map((r) => [r.id, r.state, r.body])).toEqual([
        [created.id, "COMMENTED", "Two notes."],
        [pendingJson.id, "PENDING", "Draft."],
      ]);
      expect(github.count("GET", `${PULL}/reviews`)).toBe(2);
      expect(github.count("POST", `${PULL}/reviews`)).toBe(3);
      expect(github.writes().map((w) => `${w.method} ${w.path} ${w.status}`)).toEqual([
        `POST ${PULL}/reviews 401`,
        `POST ${PULL}/reviews 200`,
        `POST ${PULL}/reviews 200`,
      ]);
      expect((await call("GET", `/repos/${HELLO}/pulls/8/reviews`)).status).toBe(404);
    });

    it("refuses a review whose comment is off the pull request's diff with 422", async () => {
      github.setPull(HELLO, pull([file(1), { ...file(2), patch: undefined }]));
      const token = `token ${await tokenOf(2)}`;
      const refused = async (inline: Record<string, unknown>) => {
        const res = await call("POST", `${PULL}/reviews`, token, {
          event: "COMMENT",
          body: "Notes.",
          comments: [comment, { body: "Note.", ...inline }],
        });
        expect(res.status, JSON.stringify(inline)).toBe(422);
        return ((await res.json()) as { errors: string[] }).errors;
      };
      expect(await refused({ path: "README.md", line: 1 })).toEqual(["Path could not be resolved"]);
      const lineErrors = ["Line could not be resolved"];
      // A line outside the hunks, on either side, and a range across two hunks.
      expect(await refused({ path: "src/file-1.ts", line: 20 })).toEqual(lineErrors);
      expect(await refused({ path: "src/file-1.ts", line: 12, side: "LEFT" })).toEqual(lineErrors);
      expect(await refused({ path: "src/file-1.ts", start_line: 12, line: 41 })).toEqual(
        lineErrors,
      );
      // A file without a patch (binary, or too large) has no line to comment on.
      expect(await refused({ path: "src/file-2.ts", line: 1 })).toEqual(lineErrors);
      expect(github.reviews.size).toBe(0);

      const ok = await call("POST", `${PULL}/reviews`, token, {
        event: "COMMENT",
        comments: [{ path: "src/file-1.ts", position: 7, body: "Last line of the diff." }],
      });
      expect(ok.status).toBe(200);
    });
  });
});
