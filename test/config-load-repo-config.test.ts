import { describe, expect, it } from "vitest";
import { loadRepoConfig, loadRepoConfigOf } from "../src/github/load-repo-config.js";
import { parseRepoConfig, restrictiveConfig } from "../src/parse-repo-config.js";
import { openConfigContext } from "./helpers/config-context.js";

const REPO = { owner: "Codertocat", repo: "Hello-World" };
const FILE = "/contents/.github%2Ftalos.yml";
const RAW = { "content-type": "application/vnd.github.raw; charset=utf-8" };

describe("_extends in .github/talos.yml", () => {
  it("a list in the repository's file replaces the inherited one: it never widens it", async () => {
    const { scope, octokit, context } = await openConfigContext();
    scope
      .get(`/repos/Codertocat/Hello-World${FILE}`)
      .reply(
        200,
        "_extends: .github\ncommands:\n  allowed_associations: [OWNER]\ntriage:\n  enabled: true\n  labels: [bug]\n",
        RAW,
      )
      .get(`/repos/Codertocat/.github${FILE}`)
      .reply(
        200,
        "commands:\n  allowed_associations: [OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR]\ntriage:\n  labels: [bug, security-approved]\n  comment: true\n",
        RAW,
      );

    const loaded = await loadRepoConfig(context);
    expect(loaded.errors).toEqual([]);
    expect(loaded.config.commands.allowed_associations).toEqual(["OWNER"]);
    expect(loaded.config.triage).toMatchObject({ enabled: true, labels: ["bug"], comment: true });
    // The same outside an event (backfill), section by section (served from the cache).
    const outside = await loadRepoConfigOf(octokit, REPO, context.log);
    expect(outside.config).toEqual(loaded.config);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it.each([
    ["another owner's repository Talos cannot read", "other-org/settings", "other-org/settings"],
    [
      "a repository of the owner that has no such file",
      "talos-settings",
      "Codertocat/talos-settings",
    ],
  ])("naming %s gives the most restrictive settings, and says why", async (_case, value, repo) => {
    const { app, scope, context } = await openConfigContext();
    scope
      .get(`/repos/Codertocat/Hello-World${FILE}`)
      .reply(200, `_extends: ${value}\nask:\n  enabled: true\n`, RAW)
      .get(`/repos/${repo}${FILE}`)
      .reply(404, { message: "Not Found" });

    const loaded = await loadRepoConfig(context);
    expect(loaded.found).toBe(true);
    expect(loaded.config).toEqual(restrictiveConfig());
    expect(loaded.errors).toEqual([
      `.github/talos.yml: \`_extends\` names \`${repo}:.github/talos.yml\`, which does not exist or Talos cannot read; using the most restrictive settings`,
    ]);
    expect(app.logs.lines().find((l) => l.msg === "repository config is invalid")).toMatchObject({
      level: 40,
      errors: loaded.errors,
    });
    expect(scope.pendingMocks()).toEqual([]);
  });
});

describe("merge keys with _extends", () => {
  it("a setting the repository's file merges in (<<) beats the one its base sets", async () => {
    // Merge keys belong to the file that writes them: applied after the files were merged, the
    // base's own `allowed_associations` was the mapping's own key, and beat the nearer `<<`.
    const { scope, context } = await openConfigContext();
    scope
      .get(`/repos/Codertocat/Hello-World${FILE}`)
      .reply(
        200,
        "_extends: .github\nowners: &owners\n  allowed_associations: [OWNER]\ncommands:\n  <<: *owners\n",
        RAW,
      )
      .get(`/repos/Codertocat/.github${FILE}`)
      .reply(200, "commands:\n  allowed_associations: [OWNER, MEMBER, COLLABORATOR]\n", RAW);

    const loaded = await loadRepoConfig(context);
    expect(loaded.config.commands.allowed_associations).toEqual(["OWNER"]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("a mapping that holds itself, in both files, gives the most restrictive settings", async () => {
    // Merged key by key, two self-holding mappings at one key recursed for ever (a stack
    // overflow that failed the event) instead of falling back toward less power.
    const { scope, context } = await openConfigContext();
    const cyclic = "triage: &t\n  enabled: true\n  self: *t\n";
    scope
      .get(`/repos/Codertocat/Hello-World${FILE}`)
      .reply(200, `_extends: .github\n${cyclic}`, RAW)
      .get(`/repos/Codertocat/.github${FILE}`)
      .reply(200, cyclic, RAW);

    const loaded = await loadRepoConfig(context);
    expect(loaded.config).toEqual(restrictiveConfig());
    expect(loaded.errors).toHaveLength(1);
    expect(loaded.errors[0]).toMatch(/^\.github\/talos\.yml: .*most restrictive settings$/);
    expect(scope.pendingMocks()).toEqual([]);
  });
});

describe("an `_extends` a merge key brings in", () => {
  it.each([
    ["an inline mapping", "<<: {_extends: .github}\n"],
    ["an alias", "base: &base\n  _extends: .github\n<<: *base\n"],
  ])(
    "is reported, with the most restrictive settings, not read as followed (%s)",
    async (_, text) => {
      // Probot's plugin follows `_extends` only as the file's own key; brought in by `<<` it was
      // read as set, never followed, and every setting took its default, without a word.
      const { scope, context } = await openConfigContext();
      scope.get(`/repos/Codertocat/Hello-World${FILE}`).reply(200, text, RAW);

      const loaded = await loadRepoConfig(context);
      expect(loaded.config).toEqual(restrictiveConfig());
      expect(loaded.errors).toEqual([
        ".github/talos.yml: `_extends` comes from a merge key (`<<`), which Talos does not follow; write it as a key of the file. Using the most restrictive settings",
      ]);
      expect(scope.pendingMocks()).toEqual([]);
    },
  );
});

describe("a .github/talos.yml that is one scalar", () => {
  // Probot's plugin reads `false`, `0` and `""` as an empty mapping, which gave every default: a
  // maintainer who wrote `false` to switch Talos off had it on, COLLABORATORs' commands included.
  it.each(["false\n", "# Talos off\n0\n", '""\n', ".nan\n", "true\n"])(
    "%j gives the most restrictive settings, and says why",
    async (text) => {
      const { scope, context } = await openConfigContext();
      scope.get(`/repos/Codertocat/Hello-World${FILE}`).reply(200, text, RAW);

      const loaded = await loadRepoConfig(context);
      expect(loaded.config).toEqual(restrictiveConfig());
      expect(loaded.errors).toEqual([
        ".github/talos.yml: the top level must be a mapping of settings; using the most restrictive settings",
      ]);
      expect(scope.pendingMocks()).toEqual([]);
    },
  );

  it.each(["", "# nothing set yet\n", "~\n"])(
    "%j sets nothing: the defaults, with no error",
    async (text) => {
      const { scope, context } = await openConfigContext();
      scope.get(`/repos/Codertocat/Hello-World${FILE}`).reply(200, text, RAW);

      const loaded = await loadRepoConfig(context);
      expect(loaded.config).toEqual(parseRepoConfig({}).config);
      expect(loaded.errors).toEqual([]);
      expect(scope.pendingMocks()).toEqual([]);
    },
  );
});
