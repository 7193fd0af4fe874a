import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  COMMAND_NAMES,
  ConfigError,
  EnvSchema,
  getRepoConfigJsonSchema,
  getSecrets,
  loadEnvironment,
  parseEnv,
  RepoConfigSchema,
  type Env,
  type RepoConfig,
} from "../src/config.js";
import {
  parseRepoConfig,
  RESTRICTIVE_SETTINGS,
  restrictiveConfig,
} from "../src/parse-repo-config.js";
import { createCommandRegistry } from "../src/commands/command-registry.js";
import { ALL_COMMANDS } from "../src/commands/all-commands.js";
import { helpCommand } from "../src/commands/help-command.js";
import { makeDataDir, TEST_PRIVATE_KEY } from "./helpers/test-app.js";

describe("parseRepoConfig", () => {
  const defaults = RepoConfigSchema.parse({});

  it("gives the defaults for a missing file", () => {
    expect(parseRepoConfig(null)).toEqual({ config: defaults, errors: [] });
    expect(defaults.commands.allowed_associations).toEqual(["OWNER", "MEMBER", "COLLABORATOR"]);
  });

  it("keeps valid settings", () => {
    const { config, errors } = parseRepoConfig({ commands: { help_for_everyone: true } });
    expect(errors).toEqual([]);
    expect(config.commands).toEqual({ ...defaults.commands, help_for_everyone: true });
  });

  it("falls back toward less power for an invalid value, naming the field and the file", () => {
    const { config, errors } = parseRepoConfig({
      commands: { help_for_everyone: "yes", allowed_associations: ["MEMBER"] },
    });
    expect(config.commands.allowed_associations).toEqual(["MEMBER"]);
    expect(config.commands.help_for_everyone).toBe(false);
    expect(errors).toEqual([
      expect.stringMatching(
        /^\.github\/talos\.yml: `commands\.help_for_everyone` is invalid .*most restrictive value$/,
      ),
    ]);
  });

  it("leaves permissions no wider than the valid items give, for the three typos of issue 9", () => {
    const labels = parseRepoConfig({ triage: { enabled: true, labels: ["bug", "question", 404] } });
    expect(labels.config.triage).toMatchObject({ enabled: true, labels: ["bug", "question"] });
    expect(labels.errors).toEqual([
      expect.stringContaining("`triage.labels[2]` (`404`) is invalid"),
    ]);

    const who = parseRepoConfig({ commands: { allowed_associations: ["OWNER", "MAINTAINER"] } });
    expect(who.config.commands.allowed_associations).toEqual(["OWNER"]);
    // None valid: the owner keeps `/talos config`, to find the mistake; an empty list is nobody.
    const none = parseRepoConfig({ commands: { allowed_associations: ["owner", "MAINTAINER"] } });
    expect(none.config.commands.allowed_associations).toEqual(["OWNER"]);
    expect(none.errors.at(-1)).toBe(
      ".github/talos.yml: `commands.allowed_associations` names no valid association; only `OWNER` may run commands until it is fixed",
    );
    const nobody = parseRepoConfig({ commands: { allowed_associations: [] } });
    expect(nobody.config.commands.allowed_associations).toEqual([]);
    expect(nobody.errors).toEqual([]);

    const off = parseRepoConfig({ commands: { disabled: ["ask", "sumarize"] } });
    expect(off.config.commands.disabled).toEqual(["ask", "summarize"]);
    expect(off.errors).toEqual([
      expect.stringContaining('`commands.disabled[1]` (`"sumarize"`) is not a command; read as'),
    ]);
    // A deny-list that lost an item would run what it named: every command but config is off.
    for (const disabled of [
      ["ask", "everything"],
      ["ask, review"],
      ["summarize-command", "review"],
    ]) {
      const unknown = parseRepoConfig({ commands: { disabled } });
      expect(unknown.config.commands.disabled).toEqual(COMMAND_NAMES.filter((c) => c !== "config"));
      expect(unknown.errors.at(-1)).toBe(
        ".github/talos.yml: `commands.disabled` has a mistake; every command but `config` is off until it is fixed",
      );
    }
  });

  it("turns triage off when triage.labels names no valid label, rather than allow any", () => {
    for (const labels of [[404], "bug", { bug: true }]) {
      const { config, errors } = parseRepoConfig({ triage: { enabled: true, labels } });
      expect(config.triage.enabled).toBe(false);
      expect(errors.at(-1)).toContain("triage is off until it does");
    }
    // Left out or empty, the list means "any existing label", as documented.
    expect(parseRepoConfig({ triage: { enabled: true, labels: [] } }).config.triage.enabled).toBe(
      true,
    );
  });

  // Issue text can steer the model toward any label, so a misspelt list must not mean "any".
  it.each(["Labels", "label", "lables"])(
    "turns triage off when triage.labels is misspelt as %s, naming the key",
    (key) => {
      const { config, errors } = parseRepoConfig({
        triage: { enabled: true, apply_labels: true, [key]: ["question"] },
      });
      expect(config.triage.enabled).toBe(false);
      expect(errors).toContainEqual(
        expect.stringMatching(
          new RegExp(`\\(\`triage\\.${key}\` looks meant for it\\); triage is off until it does$`),
        ),
      );
    },
  );

  it("turns automatic pull-request work off when ignore_authors is misspelt, naming the key", () => {
    const { config, errors } = parseRepoConfig({ pull_requests: { ignore_author: ["alice"] } });
    // Alice's pull requests would otherwise get summaries and reviews on push.
    expect(config.pull_requests.enabled).toBe(false);
    expect(config.review.on_push).toBe(false);
    expect(errors).toContainEqual(
      expect.stringContaining(
        "`pull_requests.ignore_authors` has a mistake (`pull_requests.ignore_author` looks meant for it); pull-request summaries are off",
      ),
    );
  });

  it("turns reviews and summaries off when review.ignore is invalid or misspelt", () => {
    for (const review of [{ ignore: "secrets/**" }, { ignroe: ["secrets/**"] }, { ignore: [""] }]) {
      const { config, errors } = parseRepoConfig({ review });
      expect(config.review).toMatchObject({ enabled: false, on_push: false });
      expect(config.pull_requests.enabled).toBe(false);
      expect(errors.at(-1)).toContain("reviews and pull-request summaries are off");
    }
    expect(parseRepoConfig({ review: { ignroe: [] } }).errors.at(-1)).toContain(
      "(`review.ignroe` looks meant for it)",
    );
  });

  it("leaves correctly spelt, valid allow- and deny-lists as given", () => {
    const raw = {
      triage: { enabled: true, apply_labels: true, labels: ["question"] },
      pull_requests: { ignore_authors: ["alice"] },
      review: { ignore: ["secrets/**"] },
    };
    const { config, errors } = parseRepoConfig(raw);
    expect(errors).toEqual([]);
    expect(config).toEqual(RepoConfigSchema.parse(raw));
    expect(config.triage).toMatchObject({ enabled: true, labels: ["question"] });
    expect(config.pull_requests).toMatchObject({ enabled: true, ignore_authors: ["alice"] });
    expect(config.review).toMatchObject({ enabled: true, on_push: true });
    // A misspelt key beside the correct one keeps an allow-list that still names a label.
    const both = parseRepoConfig({ triage: { enabled: true, labels: ["bug"], Labels: ["x"] } });
    expect(both.config.triage).toMatchObject({ enabled: true, labels: ["bug"] });
  });

  it.each(Object.entries(RESTRICTIVE_SETTINGS))(
    "an invalid %s falls back to %j",
    (field, restrictive) => {
      const [section, key] = field.split(".") as [string, string];
      const { config, errors } = parseRepoConfig({ [section]: { [key]: { invalid: true } } });
      expect((config as any)[section][key]).toEqual(restrictive);
      expect(errors[0]).toContain(`\`${field}\` is invalid`);
    },
  );

  it("pull requests: a mistake never widens which pull requests get automatic work", () => {
    const defaults = RepoConfigSchema.parse({});
    expect(defaults.pull_requests).toEqual({
      enabled: true,
      ignore_authors: [],
      ignore_title: "^\\[?(wip|skip talos)\\b",
    });
    expect(defaults.review).toMatchObject({ enabled: true, on_push: true, max_comments: 8 });

    // A pattern RE2 cannot compile (a backreference) skips every pull request, not none.
    const badTitle = parseRepoConfig({ pull_requests: { ignore_title: "(a)\\1" } });
    expect(badTitle.config.pull_requests.ignore_title).toBe("");
    expect(badTitle.errors).toEqual([
      expect.stringContaining(
        "`pull_requests.ignore_title` is invalid (not a valid regular expression (RE2 syntax))",
      ),
    ]);
    // A dropped login would widen who gets summaries: summaries go off instead.
    const badAuthor = parseRepoConfig({ pull_requests: { ignore_authors: ["octocat", 42] } });
    expect(badAuthor.config.pull_requests).toMatchObject({
      enabled: false,
      ignore_authors: ["octocat"],
    });
    expect(badAuthor.errors).toContainEqual(
      expect.stringContaining("pull-request summaries are off"),
    );

    const tooMany = parseRepoConfig({ review: { max_comments: 500, max_tokens: "lots" } });
    expect(tooMany.config.review).toMatchObject({ max_comments: 0, max_tokens: 1_000 });
  });

  it("has a restrictive fallback for every setting that decides who acts or what runs", () => {
    const defaults = RepoConfigSchema.parse({}) as unknown as Record<
      string,
      Record<string, unknown>
    >;
    const settings = Object.entries(defaults).flatMap(([section, values]) =>
      Object.keys(values).map((key) => `${section}.${key}`),
    );
    // similar.threshold and budget.daily_tokens have no default (the embedder's own and the
    // installation's apply), so list them by hand.
    expect([...settings, "similar.threshold", "budget.daily_tokens"].sort()).toEqual(
      Object.keys(RESTRICTIVE_SETTINGS).sort(),
    );
    // And the README's table of fallbacks has a row for each, and none for anything else.
    const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
    const table = readme.slice(
      readme.indexOf("| Setting "),
      readme.indexOf("\n\n", readme.indexOf("| Setting ")),
    );
    const rows = [...table.matchAll(/^\s*\| `([a-z_.]+)`/gm)].map((m) => m[1]);
    expect(rows.sort()).toEqual(Object.keys(RESTRICTIVE_SETTINGS).sort());
    const restrictive = restrictiveConfig();
    expect(restrictive.commands.allowed_associations).toEqual(["OWNER"]);
    expect(restrictive.commands.disabled).toEqual(COMMAND_NAMES.filter((c) => c !== "config"));
    expect(restrictive.triage.enabled).toBe(false);
    expect(restrictive.memory.enabled).toBe(false);
  });

  it("reports each unknown key and ignores it; a near miss of a setting narrows that setting", () => {
    const { config, errors } = parseRepoConfig({
      traige: { enabled: true },
      commands: { disable: ["help"], extra: 1 },
    });
    expect(errors).toHaveLength(3);
    expect(errors.join("\n")).toContain("`commands.disable` is not a known setting");
    // `disable` meant `disabled`: everything but `config` is off; `traige` meant `triage`.
    expect(config.commands.disabled).toEqual(COMMAND_NAMES.filter((c) => c !== "config"));
    expect(config.triage).toEqual(restrictiveConfig().triage);
    expect(config.commands.allowed_associations).toEqual(
      RepoConfigSchema.parse({}).commands.allowed_associations,
    );
  });

  it("narrows a whole misspelt section, but not one the file also sets correctly", () => {
    const misspelt = parseRepoConfig({ comands: { allowed_associations: ["OWNER", "MEMBER"] } });
    expect(misspelt.config.commands).toEqual(restrictiveConfig().commands);
    const both = parseRepoConfig({
      comands: {},
      commands: { allowed_associations: ["OWNER", "MEMBER"] },
    });
    expect(both.config.commands.allowed_associations).toEqual(["OWNER", "MEMBER"]);
    expect(both.config.commands.help_for_everyone).toBe(false);
    expect(both.config.commands.disabled).toEqual(restrictiveConfig().commands.disabled);
  });

  it("uses the most restrictive settings when the top level is not a mapping", () => {
    for (const raw of [[1, 2], "text", 42]) {
      const { config, errors } = parseRepoConfig(raw);
      expect(config).toEqual(restrictiveConfig());
      expect(errors[0]).toContain("must be a mapping");
    }
  });

  it("narrows an invalid section to its restrictive settings", () => {
    const { config, errors } = parseRepoConfig({ commands: "all" });
    expect(config).toEqual({ ...defaults, commands: restrictiveConfig().commands });
    expect(errors).toHaveLength(1);
  });
});

describe("parseEnv", () => {
  it("refuses a TALOS_DATA_DIR that is a file, naming it; a missing one is created later", () => {
    const directory = mkdtempSync(join(tmpdir(), "talos-config-"));
    const file = join(directory, "file");
    writeFileSync(file, "");
    for (const path of [file, join(file, "data")])
      expect(() => parseEnv({ TALOS_DATA_DIR: path })).toThrow(
        `Invalid environment: TALOS_DATA_DIR: ${path} is not a directory`,
      );
    expect(parseEnv({ TALOS_DATA_DIR: join(directory, "later") }).TALOS_DATA_DIR).toBe(
      join(directory, "later"),
    );
    rmSync(directory, { recursive: true });
  });

  it("applies defaults and treats empty values as unset", () => {
    const env = parseEnv({ TALOS_DATA_DIR: "", LOG_LEVEL: "", OPENAI_API_KEY: "" });
    expect(env.TALOS_DATA_DIR).toBe("./data");
    expect(env.LOG_LEVEL).toBe("info");
    expect(env.OPENAI_API_KEY).toBeUndefined();
  });

  it("treats a blank value as unset, as Probot does, never as 0", () => {
    const defaults = parseEnv({});
    // Every number with a default: `Number(" ")` is 0, which a coercion would take as a value.
    const numbers = Object.keys(EnvSchema.shape).filter(
      (name) => typeof defaults[name as keyof Env] === "number",
    );
    expect(numbers).toContain("TALOS_DAILY_TOKEN_BUDGET");
    for (const name of numbers) {
      for (const blank of [" ", "\t", "  \n"]) {
        expect(parseEnv({ [name]: blank })[name as keyof Env]).toBe(defaults[name as keyof Env]);
      }
    }
    const env = parseEnv({ TALOS_METRICS_PORT: " ", PORT: "\t", LOG_LEVEL: " ", LOG_FORMAT: " " });
    expect(env.TALOS_METRICS_PORT).toBeUndefined();
    expect(env.PORT).toBeUndefined();
    expect(env.LOG_LEVEL).toBe("info");
    expect(env.LOG_FORMAT).toBeUndefined();
    // An explicit 0 is still a value: a metrics listener on a port the system picks.
    expect(parseEnv({ TALOS_METRICS_PORT: "0" }).TALOS_METRICS_PORT).toBe(0);
  });

  it("fails with the variable's name", () => {
    expect(() => parseEnv({ TALOS_LEDGER_MAX_ENTRIES: "lots" })).toThrow(
      /TALOS_LEDGER_MAX_ENTRIES/,
    );
    expect(() => parseEnv({ REDIS_URL: "127.0.0.1:6379" })).toThrow(/REDIS_URL/);
    // 1e308 hours were Infinity ms, an expiry Redis refuses for every delivery's record.
    expect(() => parseEnv({ TALOS_LEDGER_RETENTION_HOURS: "1e308" })).toThrow(
      /^Invalid environment: TALOS_LEDGER_RETENTION_HOURS: at most 8,760 \(a year\)/,
    );
    expect(parseEnv({ TALOS_LEDGER_RETENTION_HOURS: "8760" }).TALOS_LEDGER_RETENTION_HOURS).toBe(
      8_760,
    );
  });

  it("refuses a delay Node's timers cannot wait for, rather than wait 1 ms", () => {
    // setTimeout takes at most 2^31-1 ms; beyond, it warns and fires after 1 ms: a grace of
    // 3,000,000,000 ms would give running jobs none at all.
    expect(parseEnv({ TALOS_SHUTDOWN_GRACE_MS: "2147483647" }).TALOS_SHUTDOWN_GRACE_MS).toBe(
      2_147_483_647,
    );
    for (const variable of [
      "TALOS_SHUTDOWN_GRACE_MS",
      "TALOS_LLM_TIMEOUT_MS",
      "TALOS_MEMORY_FLUSH_MS",
      "TALOS_GITHUB_WRITE_INTERVAL_MS",
      "TALOS_GITHUB_NOTIFICATION_INTERVAL_MS",
      // A lease past it was lost 1 ms after each claim: the job stopped, another instance took it.
      "TALOS_JOB_LEASE_MS",
    ]) {
      expect(() => parseEnv({ [variable]: "3000000000" }), variable).toThrow(
        new RegExp(`^Invalid environment: ${variable}: `),
      );
    }
    // Seconds: a retry-after that long would be waited 1 ms.
    expect(() => parseEnv({ TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS: "3000000" })).toThrow(
      /^Invalid environment: TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS: at most 2147483 /,
    );
    expect(
      parseEnv({ TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS: "2147483" })
        .TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS,
    ).toBe(2_147_483);
  });

  it("refuses a REDIS_URL or DATABASE_URL that is no URL, naming it and never echoing it", () => {
    // They passed the scheme check and failed at start with "talos: Invalid URL", exit 1; and
    // an unparseable URL's password was not counted among the secrets.
    for (const [variable, url] of [
      ["REDIS_URL", "redis://:Pa55word-secret@127.0.0.1:99999"],
      ["DATABASE_URL", "postgres://talos:Pa55word-secret@db host/talos"],
    ] as const) {
      let error: unknown;
      try {
        parseEnv({ [variable]: url });
      } catch (caught) {
        error = caught;
      }
      expect(error, variable).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(new RegExp(`^Invalid environment: ${variable}: `));
      expect((error as Error).message).not.toContain("Pa55word");
    }
  });

  it("checks PORT and APP_ID, and leaves PORT to Probot's default when unset", () => {
    expect(parseEnv({}).PORT).toBeUndefined();
    expect(parseEnv({ PORT: "8080" }).PORT).toBe(8080);
    for (const port of ["abc", "0", "99999", "80.5"]) {
      expect(() => parseEnv({ PORT: port })).toThrow(
        /^Invalid environment: PORT: use a port number from 1 to 65535$/,
      );
    }
    expect(() => parseEnv({ APP_ID: "abc", PRIVATE_KEY: TEST_PRIVATE_KEY })).toThrow(
      /^Invalid environment: APP_ID: /,
    );
    expect(parseEnv({ APP_ID: "12", PRIVATE_KEY: TEST_PRIVATE_KEY }).APP_ID).toBe("12");
  });

  it("with APP_ID, needs a private key Probot can load, and never echoes it", () => {
    const cwd = makeDataDir();
    const key = "MySuperSecretGarbageKey12345";
    const garbage = () => parseEnv({ APP_ID: "1", PRIVATE_KEY: key }, { cwd });
    expect(garbage).toThrow(ConfigError);
    expect(garbage).toThrow(/^Invalid environment: PRIVATE_KEY: not a PEM private key/);
    expect(garbage).not.toThrow(new RegExp(key));
    const escaped = TEST_PRIVATE_KEY.replace(/\n/g, "\\n");
    expect(parseEnv({ APP_ID: "1", PRIVATE_KEY: escaped }, { cwd }).APP_ID).toBe("1");
    const base64 = Buffer.from(TEST_PRIVATE_KEY).toString("base64");
    expect(parseEnv({ APP_ID: "1", PRIVATE_KEY: base64 }, { cwd }).APP_ID).toBe("1");
    expect(() => parseEnv({ APP_ID: "1", PRIVATE_KEY_PATH: "missing.pem" }, { cwd })).toThrow(
      /^Invalid environment: PRIVATE_KEY_PATH: cannot read a private key at missing\.pem$/,
    );
    writeFileSync(join(cwd, "not-a-key.pem"), "hello");
    expect(() => parseEnv({ APP_ID: "1", PRIVATE_KEY_PATH: "not-a-key.pem" }, { cwd })).toThrow(
      /^Invalid environment: PRIVATE_KEY_PATH: not-a-key\.pem does not hold a PEM private key$/,
    );
    // The PEM lines around a body that is not a key (cut, or edited by hand).
    const mangled = TEST_PRIVATE_KEY.replace(/\n[A-Za-z0-9+/=]{64}\n/, "\nnot-base64!\n");
    expect(mangled).not.toBe(TEST_PRIVATE_KEY);
    expect(() => parseEnv({ APP_ID: "1", PRIVATE_KEY: mangled }, { cwd })).toThrow(
      /^Invalid environment: PRIVATE_KEY: the PEM private key cannot be read \(cut short or edited\?\)$/,
    );
    writeFileSync(join(cwd, "mangled.pem"), mangled);
    expect(() => parseEnv({ APP_ID: "1", PRIVATE_KEY_PATH: "mangled.pem" }, { cwd })).toThrow(
      /^Invalid environment: PRIVATE_KEY_PATH: the key in mangled\.pem cannot be read/,
    );
    const ecKey = generateKeyPairSync("ec", {
      namedCurve: "P-256",
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    }).privateKey;
    expect(() => parseEnv({ APP_ID: "1", PRIVATE_KEY: ecKey }, { cwd })).toThrow(
      /^Invalid environment: PRIVATE_KEY: the PEM private key is ec, not the RSA key GitHub gives an app$/,
    );
    // PKCS#1, as GitHub's download is, loads too.
    const pkcs1 = createPrivateKey(TEST_PRIVATE_KEY).export({ type: "pkcs1", format: "pem" });
    expect(parseEnv({ APP_ID: "1", PRIVATE_KEY: String(pkcs1) }, { cwd }).APP_ID).toBe("1");
    expect(() => parseEnv({ APP_ID: "1" }, { cwd: makeDataDir() })).toThrow(
      /^Invalid environment: PRIVATE_KEY: APP_ID is set, but no private key is/,
    );
    // Without APP_ID, Probot's setup page starts: no key is needed.
    expect(parseEnv({}, { cwd: makeDataDir() }).APP_ID).toBeUndefined();
  });

  it("reads .env over the environment, and says in one line when it cannot", () => {
    const cwd = makeDataDir();
    expect(loadEnvironment(cwd, { A: "1" })).toEqual({ A: "1" });
    writeFileSync(join(cwd, ".env"), "A=2\n");
    expect(loadEnvironment(cwd, { A: "1" })).toEqual({ A: "2" });
    const directory = makeDataDir();
    mkdirSync(join(directory, ".env"));
    expect(() => loadEnvironment(directory, {})).toThrow(ConfigError);
    expect(() => loadEnvironment(directory, {})).toThrow(/^cannot read .*\.env: EISDIR$/);
  });

  it("counts a Redis password among the secrets kept out of logs", () => {
    const env = parseEnv({ REDIS_URL: "redis://:s%40cret-pass@redis:6379/0" });
    expect(getSecrets(env)).toContain("s@cret-pass");
    expect(getSecrets(parseEnv({ REDIS_URL: "redis://redis:6379" }))).not.toContain("");
  });

  it("refuses a job cap that leaves no room for a prompt beside the answer", () => {
    // 1,000 was allowed, under the answer's 1,500 alone: every command got the budget notice.
    expect(() => parseEnv({ TALOS_AGENT_MAX_TOKENS: "1000" })).toThrow(
      "Invalid environment: TALOS_AGENT_MAX_TOKENS: 1000 leaves no room for a prompt beside the answer's 1500 (TALOS_LLM_MAX_OUTPUT_TOKENS); set at least 3500",
    );
    expect(() =>
      parseEnv({ TALOS_AGENT_MAX_TOKENS: "9000", TALOS_LLM_MAX_OUTPUT_TOKENS: "8000" }),
    ).toThrow(/TALOS_AGENT_MAX_TOKENS: 9000 .*set at least 10000$/);
    expect(parseEnv({ TALOS_AGENT_MAX_TOKENS: "3500" }).TALOS_AGENT_MAX_TOKENS).toBe(3500);
  });

  it("counts the password of a model proxy's URL too", () => {
    const env = parseEnv({ OPENAI_BASE_URL: "https://talos:proxy-pass-1@llm.internal/v1" });
    expect(getSecrets(env)).toContain("proxy-pass-1");
  });

  it("reads the secrets of the raw environment too, for errors printed before it parses", () => {
    expect(
      getSecrets({ WEBHOOK_SECRET: "whsec-raw", DATABASE_URL: "postgres://a:b1@h/d" }),
    ).toEqual(expect.arrayContaining(["whsec-raw", "b1"]));
  });
});

describe("the committed JSON Schema", () => {
  it("matches the zod schema (run `npm run schema` after changing it)", () => {
    const committed = JSON.parse(
      readFileSync(new URL("../schema/talos.schema.json", import.meta.url), "utf8"),
    );
    expect(committed).toEqual(getRepoConfigJsonSchema());
  });
});

describe("the command registry", () => {
  it("holds exactly the commands the config can name", () => {
    const registry = createCommandRegistry(ALL_COMMANDS);
    const all = { config: RepoConfigSchema.parse({}), errors: [], found: false };
    expect(registry.enabled(all).map((c) => c.name)).toEqual([...COMMAND_NAMES]);
  });

  it("refuses a second command with a taken name", () => {
    expect(() => createCommandRegistry([helpCommand, ...ALL_COMMANDS])).toThrow(/registered twice/);
  });
});

describe("YAML merge keys and mappings under a name of their own", () => {
  // Parsed as Probot's config plugin parses the file (YAML 1.2: `<<` is a plain key).
  const read = (yaml: string) => parseRepoConfig(parseYaml(yaml, { logLevel: "error" }));
  const OWNERS_ONLY =
    "owners_only: &owners_only\n  allowed_associations: [OWNER]\n  disabled: [ask, review, summarize]\n";

  // Found by a review: `<<` was an unknown key, and the settings it held took their defaults
  // (every maintainer, every command), more than the file meant.
  it("`commands: { <<: *anchor }` takes the anchored settings", () => {
    const { config, errors } = read(`${OWNERS_ONLY}commands:\n  <<: *owners_only\n`);
    expect(config.commands.allowed_associations).toEqual(["OWNER"]);
    expect(config.commands.disabled).toEqual(["ask", "review", "summarize"]);
    // The anchor's holder is no setting, and says so.
    expect(errors).toEqual([".github/talos.yml: `owners_only` is not a known setting (ignored)"]);
  });

  it("keys the mapping sets win over merged ones, and earlier merged mappings over later", () => {
    const { config } = read(
      `${OWNERS_ONLY}members: &members\n  allowed_associations: [OWNER, MEMBER]\n  help_for_everyone: true\n` +
        "commands:\n  <<: [*members, *owners_only]\n  disabled: [review]\n",
    );
    expect(config.commands.allowed_associations).toEqual(["OWNER", "MEMBER"]);
    expect(config.commands.help_for_everyone).toBe(true);
    expect(config.commands.disabled).toEqual(["review"]);
  });

  it("a `<<` that names no mapping is an unknown key, as before", () => {
    const { config, errors } = read("commands:\n  <<: 5\n");
    expect(config.commands.allowed_associations).toEqual(["OWNER", "MEMBER", "COLLABORATOR"]);
    expect(errors).toEqual([".github/talos.yml: `commands.<<` is not a known setting (ignored)"]);
  });

  it("a file of more keys than Talos reads is refused before merge keys copy what they merge", () => {
    // 99 `<<: *big` of one 6,000-key mapping (under the parser's 100 aliases, in 60 KB) made
    // 600,000 keys, 0.7 s at every event, before the count refused them (found by a review).
    const keys = Array.from({ length: 6_000 }, (_, i) => `k${i}: 0`).join(", ");
    const text = `big: &b {${keys}}\nlist:\n${"  - {<<: *b}\n".repeat(99)}`;
    expect(text.length).toBeLessThan(64 * 1024);
    const raw: unknown = parseYaml(text, { logLevel: "error" });
    const clone = vi.spyOn(globalThis, "structuredClone");
    try {
      expect(parseRepoConfig(raw).errors).toEqual([
        expect.stringMatching(/^\.github\/talos\.yml: has more than 500 keys /),
      ]);
      // The file itself is not copied (the most restrictive settings are built from copies).
      expect(clone.mock.calls.filter(([value]) => value === raw)).toEqual([]);
    } finally {
      clone.mockRestore();
    }
  });

  // Found by a review of the above: a list that holds itself was walked for ever (the server
  // hung), and one under a setting threw (the event failed) instead of falling back.
  it("a list that holds itself, through an alias: read, and nothing hangs", () => {
    const { config, errors } = read("x: &x [ *x ]\n");
    expect(config.commands.allowed_associations).toEqual(["OWNER", "MEMBER", "COLLABORATOR"]);
    expect(errors).toEqual([".github/talos.yml: `x` is not a known setting (ignored)"]);
  });

  it("a setting's list that holds itself: the most restrictive settings, and the reason", () => {
    const { config, errors } = read("triage:\n  labels: &x [ *x ]\n");
    expect(config).toEqual(restrictiveConfig());
    expect(errors).toEqual([
      expect.stringMatching(
        /^\.github\/talos\.yml: cannot be read \(`Converting circular structure to JSON.*`\); using the most restrictive settings$/,
      ),
    ]);
  });

  // Read as neither, the settings inside took their defaults.
  it("a mapping of a section's settings under an unknown name: they take their most restrictive values", () => {
    const { config, errors } = read("commands:\n  only:\n    allowed_associations: [MEMBER]\n");
    expect(config.commands.allowed_associations).toEqual(["OWNER"]);
    expect(errors).toEqual([
      ".github/talos.yml: `commands.only` is not a known setting (ignored); `commands.allowed_associations` takes its most restrictive value until it is fixed",
    ]);
  });
});

describe("config mistakes that could widen what runs", () => {
  // Read as one command, such an entry disabled only that one: `all` and `any` are two edits
  // from `ask`.
  it.each(["all", "any", "ALL", "aks"])(
    "`commands.disabled: [%s]` names no command: every command but config is off",
    (word) => {
      const { config, errors } = parseRepoConfig({ commands: { disabled: [word] } });
      expect(config.commands.disabled).toEqual(COMMAND_NAMES.filter((name) => name !== "config"));
      expect(errors.join("\n")).toContain("every command but `config` is off");
    },
  );

  it("still reads a command misspelt by a letter or two as that command", () => {
    const { config } = parseRepoConfig({ commands: { disabled: ["sumarize", "hlp", "remeber"] } });
    expect(config.commands.disabled).toEqual(["summarize", "help", "remember"]);
  });

  it("a list under a name near no setting's may have held the section's unset list: triage.allowed_labels", () => {
    const { config, errors } = parseRepoConfig({
      triage: { enabled: true, apply_labels: true, allowed_labels: ["bug"] },
    });
    // Read as neither, `labels` stayed empty: any existing label could be applied.
    expect(config.triage.enabled).toBe(false);
    expect(errors).toEqual([
      ".github/talos.yml: `triage.allowed_labels` is not a known setting (ignored); `triage.labels` takes its most restrictive value until it is fixed",
      ".github/talos.yml: `triage.labels` names no valid label (`triage.allowed_labels` looks meant for it); triage is off until it does",
    ]);
  });

  // A YAML indentation slip puts a list out of its section: read as neither, it stayed empty.
  it.each([
    [{ triage: { enabled: true, apply_labels: true }, labels: ["bug"] }, "triage.labels"],
    [{ review: { enabled: true }, ignore: ["secrets/**"] }, "review.ignore"],
    [{ pull_requests: { enabled: true }, ignore_authors: ["bob"] }, "pull_requests.ignore_authors"],
    [{ pull_requests: { enabled: true, ignore: ["secrets/**"] } }, "review.ignore"],
  ])("a guarded list out of its section, %j, switches off what %s limits", (raw, field) => {
    const { config, errors } = parseRepoConfig(raw);
    const off = {
      "triage.labels": [config.triage.enabled],
      "review.ignore": [config.review.enabled, config.pull_requests.enabled],
      "pull_requests.ignore_authors": [config.pull_requests.enabled, config.review.on_push],
    }[field];
    expect(off).toEqual(off!.map(() => false));
    expect(errors.at(-1)).toMatch(new RegExp(`^\\.github/talos\\.yml: \`${field}\` `));
  });

  it("an unknown key near a guarded list's name whose value could not have been the list switches nothing off", () => {
    for (const raw of [
      { triage: { enabled: true }, levels: 3 },
      { review: { enabled: true }, signore: true },
    ]) {
      const { config, errors } = parseRepoConfig(raw);
      expect(config.triage.enabled).toBe(raw.triage?.enabled ?? false);
      expect(config.review.enabled).toBe(raw.review?.enabled ?? true);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/is not a known setting \(ignored\)$/);
    }
  });

  it("a guarded list in its section beside an unknown key of the same name elsewhere stays as given", () => {
    const { config } = parseRepoConfig({
      triage: { enabled: true, apply_labels: true, labels: ["question"] },
      labels: ["bug"],
    });
    expect(config.triage).toMatchObject({ enabled: true, labels: ["question"] });
  });

  it("review.exclude: reviews and summaries are off rather than reading every file", () => {
    const { config } = parseRepoConfig({ review: { exclude: ["secrets/**"] } });
    expect(config.review.enabled).toBe(false);
    expect(config.pull_requests.enabled).toBe(false);
  });

  it("pull_requests.ignore_users: summaries are off rather than given to everyone", () => {
    const { config } = parseRepoConfig({ pull_requests: { ignore_users: ["dependabot"] } });
    expect(config.pull_requests.enabled).toBe(false);
  });

  it("commands.allowed: only the owner, rather than the default three associations", () => {
    const { config, errors } = parseRepoConfig({ commands: { allowed: ["OWNER"] } });
    expect(config.commands.allowed_associations).toEqual(["OWNER"]);
    expect(errors[0]).toContain(
      "`commands.allowed_associations`, `commands.disabled` take their most restrictive value",
    );
  });

  it("leaves a section's lists alone when the file sets them", () => {
    const { config } = parseRepoConfig({
      triage: { enabled: true, labels: ["bug"], allowed_labels: ["question"], notes: "x" },
    });
    expect(config.triage).toMatchObject({ enabled: true, labels: ["bug"] });
  });
});

/**
 * Unknown keys near no setting's name, which had been ignored, leaving the setting the
 * maintainers were narrowing at its wider default (found by a review).
 */
describe("unknown keys that held a narrower setting", () => {
  const read = (yaml: string) => parseRepoConfig(parseYaml(yaml, { logLevel: "error" }));
  const file = ".github/talos.yml";

  it("a wrapper around whole sections (`talos:`) gives those sections their most restrictive values", () => {
    const { config, errors } = read(
      "talos:\n  commands:\n    allowed_associations: [OWNER, MEMBER]\n  review:\n    enabled: true\n",
    );
    // Its own values would widen (MEMBER); its defaults more so (COLLABORATOR, reviews on).
    expect(config.commands).toEqual(restrictiveConfig().commands);
    expect(config.review).toEqual(restrictiveConfig().review);
    // Sections it does not name keep their defaults.
    expect(config.ask.enabled).toBe(true);
    expect(errors[0]).toBe(
      `${file}: \`talos\` is not a known setting (ignored); \`commands.allowed_associations\`, \`commands.help_for_everyone\`, \`commands.disabled\`, \`review.enabled\`, \`review.on_push\`, \`review.max_comments\`, \`review.max_tokens\`, \`review.ignore\` take their most restrictive value until it is fixed`,
    );
  });

  it("a wrapper leaves alone the sections the file also sets", () => {
    const { config } = read(
      "talos:\n  commands:\n    allowed_associations: [OWNER]\ncommands:\n  allowed_associations: [OWNER, MEMBER]\n  help_for_everyone: true\n  disabled: []\n",
    );
    expect(config.commands).toEqual({
      allowed_associations: ["OWNER", "MEMBER"],
      help_for_everyone: true,
      disabled: [],
    });
  });

  it.each([
    // One value where a list was meant, under another name: read as a one-item list.
    [
      "review:\n  exclude: 'secrets/**'\n",
      "review.exclude",
      "`review.ignore` takes its",
      (c: RepoConfig) => [c.review.enabled, c.review.on_push, c.pull_requests.enabled],
    ],
    [
      "triage:\n  enabled: true\n  apply_labels: true\n  allowed_labels: bug\n",
      "triage.allowed_labels",
      "`triage.labels` takes its",
      (c: RepoConfig) => [c.triage.enabled],
    ],
    [
      "commands:\n  permitted: OWNER\n",
      "commands.permitted",
      "`commands.allowed_associations`, `commands.disabled` take their",
      (c: RepoConfig) => [c.commands.allowed_associations.includes("MEMBER")],
    ],
    // A setting outside its section, a YAML indentation slip.
    [
      "ask:\n  enabled: true\ndaily_tokens: 1000\n",
      "daily_tokens",
      "`budget.daily_tokens` takes its",
      (c: RepoConfig) => [c.budget.daily_tokens !== 0],
    ],
    [
      "commands:\n  help_for_everyone: false\nallowed_associations: [OWNER, MEMBER]\n",
      "allowed_associations",
      "`commands.allowed_associations` takes its",
      (c: RepoConfig) => [c.commands.allowed_associations.join() !== "OWNER"],
    ],
    [
      "commands:\n  help_for_everyone: false\ndisabled: [ask]\n",
      "disabled",
      "`commands.disabled` takes its",
      (c: RepoConfig) => [!c.commands.disabled.includes("ask")],
    ],
    // An unknown key in a section of one setting meant that setting.
    [
      "budget:\n  max_daily_tokens: 1000\n",
      "budget.max_daily_tokens",
      "`budget.daily_tokens` takes its",
      (c: RepoConfig) => [c.budget.daily_tokens !== 0],
    ],
    [
      "ask:\n  disabled: true\n",
      "ask.disabled",
      "`ask.enabled` takes its",
      (c: RepoConfig) => [c.ask.enabled],
    ],
    [
      "automation:\n  max_per_hour: 5\n",
      "automation.max_per_hour",
      "`automation.max_runs_per_hour` takes its",
      (c: RepoConfig) => [c.automation.max_runs_per_hour !== 0],
    ],
    // A switch under another name may have been any of its section's.
    [
      "review:\n  on_push: true\n  skip_drafts: true\n",
      "review.skip_drafts",
      "`review.enabled` takes its",
      (c: RepoConfig) => [c.review.enabled],
    ],
  ])("%j: narrowed, and the problem says why", (yaml, key, narrowed, wider) => {
    const { config, errors } = read(yaml);
    expect(wider(config).every((each) => each === false)).toBe(true);
    expect(errors[0]).toBe(
      `${file}: \`${key}\` is not a known setting (ignored); ${narrowed} most restrictive value until it is fixed`,
    );
  });
});
