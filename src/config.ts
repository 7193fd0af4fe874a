import { createPrivateKey } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseEnv as parseDotEnv } from "node:util";
import { getPrivateKey } from "@probot/get-private-key";
import { RE2JS } from "re2js";
import { z } from "zod";

/** Treats `FOO=` like an unset variable, as shells and `.env` files commonly produce it. */
const optionalString = z.preprocess((v) => (v === "" ? undefined : v), z.string().optional());
/**
 * A number, a name from a list or a setting with a default treats `FOO=" "` as unset too, as
 * Probot does (`Number(env.PORT) || 3000`): coerced, a blank would read as 0 (a random metrics
 * port, no token budget) rather than fail. Secrets, URLs and names without a default are kept
 * as written, so that a blank one is refused or passed on as Probot sees it.
 */
const unsetIfBlank = (v: unknown) => (typeof v === "string" && v.trim() === "" ? undefined : v);
const withDefault = <T extends z.ZodType>(schema: T, fallback: z.input<T>) =>
  z.preprocess((v) => unsetIfBlank(v) ?? fallback, schema);

/**
 * A delay handed to a timer: Node's setTimeout takes at most 2^31-1 ms (24.8 days) and fires a
 * longer one after 1 ms, so a "practically forever" value would mean no wait at all.
 */
const MAX_TIMER_MS = 2_147_483_647;
const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1_000);
const timerMs = () =>
  z.coerce.number().int().max(MAX_TIMER_MS, `at most ${MAX_TIMER_MS} (Node's longest timer)`);
/** A service URL the client will parse; its text (and password) is never echoed. */
const isUrl = (value: string) => URL.canParse(value);
/** A host, with a port or not, and nothing else: what `https://` and `/api/v3` go around. */
const isHostAlone = (value: string) => {
  if (!URL.canParse(`https://${value}`)) return false;
  const url = new URL(`https://${value}`);
  // The URL drops a default port it was given: `ghe.example.com:443` is the host alone too.
  const host = value.toLowerCase().replace(/:443$/, "");
  return url.host === host && url.pathname === "/" && !url.search && !url.hash;
};

/**
 * The process environment Talos reads, parsed once at start. Probot reads its own variables
 * (APP_ID, PRIVATE_KEY, WEBHOOK_SECRET, PORT, …) itself; they are listed here only where Talos
 * needs them too, for log scrubbing.
 */
/** GitHub keeps an app's webhook deliveries 3 days: a window further back finds nothing more. */
export const REDELIVER_MAX_HOURS = 72;

export const EnvSchema = z.object({
  NODE_ENV: optionalString,
  LOG_LEVEL: withDefault(
    z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]),
    "info",
  ),
  LOG_FORMAT: z.preprocess(unsetIfBlank, z.enum(["json", "pretty"]).optional()),
  TALOS_DATA_DIR: withDefault(z.string(), "./data"),
  // GitHub keeps deliveries for redelivery for 3 days:
  // https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks
  // Bounded: 1e308 hours was Infinity ms, which Redis refuses as an expiry, for every delivery.
  TALOS_LEDGER_RETENTION_HOURS: withDefault(
    z.coerce.number().positive().max(8_760, "at most 8,760 (a year)"),
    72,
  ),
  TALOS_LEDGER_MAX_ENTRIES: withDefault(z.coerce.number().int().min(100), 50_000),
  // At start, deliveries GitHub could not make in this many hours back (Talos was down) are
  // asked for again; GitHub keeps them 3 days. 0 switches it off.
  TALOS_REDELIVER_HOURS: withDefault(
    z.coerce
      .number()
      .min(0)
      .max(
        REDELIVER_MAX_HOURS,
        `at most ${REDELIVER_MAX_HOURS} (GitHub keeps deliveries for 3 days)`,
      ),
    24,
  ),
  // lru-cache reads a TTL of 0 as "no TTL": every read, permissions too, would be fresh forever.
  TALOS_CACHE_TTL_MS: withDefault(
    z.coerce.number().int().min(1, "at least 1 (0 would keep cached reads fresh forever)"),
    5 * 60_000,
  ),
  TALOS_CACHE_MAX: withDefault(z.coerce.number().int().min(1), 10_000),
  // The cache is bounded by bytes too (each entry's JSON size), so a few huge reads cannot grow it.
  TALOS_CACHE_MAX_MB: withDefault(z.coerce.number().positive(), 64),
  TALOS_GITHUB_MAX_RETRIES: withDefault(z.coerce.number().int().min(0).max(10), 3),
  TALOS_GITHUB_MAX_RETRY_WAIT_SECONDS: withDefault(
    z.coerce
      .number()
      .min(0)
      .max(MAX_TIMER_SECONDS, `at most ${MAX_TIMER_SECONDS} (Node's longest timer)`),
    60,
  ),
  // GitHub asks integrators to leave at least a second between writes; comments, which notify
  // people, are spaced wider. A GitHub Enterprise Server without rate limits can lower both.
  // https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#pause-between-mutative-requests
  TALOS_GITHUB_WRITE_INTERVAL_MS: withDefault(timerMs().min(0), 1_000),
  TALOS_GITHUB_NOTIFICATION_INTERVAL_MS: withDefault(timerMs().min(0), 3_000),
  // GitHub Enterprise Server, as Probot reads them; `talos` subcommands use them too.
  // The host alone, as Probot builds `https://<GHE_HOST>/api/v3` from it: a URL or a path here had
  // failed every request with a DNS or "Invalid URL" error naming nothing.
  GHE_HOST: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .string()
      .refine(isHostAlone, "the host name alone (ghe.example.com), without https:// or a path")
      .optional(),
  ),
  GHE_PROTOCOL: withDefault(z.enum(["http", "https"]), "https"),
  // Any OpenAI-compatible server: OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp. Without a key
  // the language-model features are off and say how to switch them on.
  // A URL without its scheme (`localhost:8080/v1`) parses as one of scheme `localhost:`, and
  // every model call failed with "Connection error.".
  OPENAI_BASE_URL: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .string()
      .regex(/^https?:\/\//i, "use an http:// or https:// URL")
      .refine(isUrl, "not a valid URL")
      .optional(),
  ),
  TALOS_MODEL: withDefault(z.string().min(1), "gpt-4.1-mini"),
  TALOS_LLM_TIMEOUT_MS: withDefault(timerMs().positive(), 60_000),
  TALOS_LLM_MAX_RETRIES: withDefault(z.coerce.number().int().min(0).max(10), 2),
  TALOS_LLM_MAX_OUTPUT_TOKENS: withDefault(z.coerce.number().int().positive(), 1_500),
  TALOS_AGENT_MAX_STEPS: withDefault(z.coerce.number().int().min(1).max(50), 6),
  TALOS_AGENT_MAX_TOKENS: withDefault(z.coerce.number().int().min(1_000), 60_000),
  // Tool calls the model may make in one step; the rest are answered "not run".
  TALOS_AGENT_MAX_TOOL_CALLS: withDefault(z.coerce.number().int().min(1).max(32), 4),
  // Tokens per installation and UTC day, commands and automations together. 0 switches every
  // model call off. A repository can only lower it (`budget.daily_tokens`).
  TALOS_DAILY_TOKEN_BUDGET: withDefault(z.coerce.number().int().min(0), 2_000_000),
  // The embedding model's input limit (8,191 for OpenAI's text-embedding-3-*).
  TALOS_EMBEDDING_MAX_TOKENS: withDefault(z.coerce.number().int().min(16), 8_191),
  // Jobs: every accepted delivery is journaled under TALOS_DATA_DIR before it is acknowledged.
  TALOS_CONCURRENCY: withDefault(z.coerce.number().int().min(1).max(256), 8),
  TALOS_JOB_QUEUE_MAX: withDefault(z.coerce.number().int().min(1), 10_000),
  // The journal's jobs are held in RAM: their payloads' JSON together, at most (local disk).
  TALOS_JOB_QUEUE_MAX_MB: withDefault(z.coerce.number().positive(), 256),
  // The part of both bounds one installation's jobs may take, so that one installation (its jobs
  // all parking, a flood in one repository) cannot refuse every other's deliveries.
  TALOS_JOB_QUEUE_INSTALLATION_SHARE: withDefault(z.coerce.number().positive().max(1), 0.25),
  TALOS_JOB_MAX_ATTEMPTS: withDefault(z.coerce.number().int().min(1).max(100), 5),
  // Webhook bodies being received (not yet verified: their signature needs all of them), all
  // together; 4 of GitHub's largest. A delivery past it is answered 503 and can be redelivered.
  TALOS_WEBHOOK_INFLIGHT_MB: withDefault(
    z.coerce.number().int().min(25, "at least 25 (GitHub sends payloads of up to 25 MB)"),
    100,
  ),
  TALOS_SHUTDOWN_GRACE_MS: withDefault(timerMs().min(0), 20_000),
  // Several instances: with REDIS_URL the job queue is shared (BullMQ), and so is Probot's
  // GitHub throttling. Keys start with TALOS_REDIS_PREFIX; a job (and its issue's thread) stays
  // an instance's for TALOS_JOB_LEASE_MS without renewal, so a dead instance's go elsewhere then.
  REDIS_URL: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .string()
      .regex(/^rediss?:\/\//, "use a redis:// or rediss:// URL")
      .refine(isUrl, "not a valid URL (host, port 1-65535, %-encoded password)")
      .optional(),
  ),
  TALOS_REDIS_PREFIX: withDefault(
    z.string().regex(/^[\w.-]{1,64}$/, "letters, digits, _ . -"),
    "talos",
  ),
  // 60 s: from 48 s up, a job stops writing the full margin before its lease runs out, which
  // covers GitHub's 10 s for a write already sent (see LEASE_MARGIN_MS).
  TALOS_JOB_LEASE_MS: withDefault(timerMs().min(1_000), 60_000),
  // Durable state shared by the instances: with DATABASE_URL, the daily token budgets live in
  // PostgreSQL, in TALOS_DATABASE_SCHEMA, behind row-level security per installation.
  DATABASE_URL: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, "use a postgres:// or postgresql:// URL")
      .refine(isUrl, "not a valid URL (host, port 1-65535, %-encoded password)")
      .optional(),
  ),
  TALOS_DATABASE_SCHEMA: withDefault(
    z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "a plain lower-case name"),
    "talos",
  ),
  TALOS_AGENT_CONTEXT_TOKENS: withDefault(z.coerce.number().int().min(500), 12_000),
  TALOS_PROMPTS_DIR: optionalString,
  TALOS_PROMPT_CHECK_INTERVAL_MS: withDefault(z.coerce.number().int().min(0), 2_000),
  // Automatic work (triage of new issues) per installation and hour, whatever repositories ask.
  TALOS_AUTOMATION_MAX_PER_HOUR: withDefault(z.coerce.number().int().min(0), 100),
  // Memory: embeddings (OpenAI-compatible, or a local hashing embedder without a key), batching
  // of index writes, and the backfill of existing issues on install.
  TALOS_EMBEDDING_MODEL: withDefault(z.string().min(1), "text-embedding-3-small"),
  TALOS_EMBEDDING_DIMENSIONS: withDefault(z.coerce.number().int().min(8).max(8192), 1536),
  TALOS_MEMORY_BATCH_SIZE: withDefault(z.coerce.number().int().min(1), 100),
  TALOS_MEMORY_FLUSH_MS: withDefault(timerMs().min(10), 5_000),
  // Open memory stores (their vectors in RAM) are kept in an LRU of this many megabytes.
  TALOS_MEMORY_MAX_OPEN_MB: withDefault(z.coerce.number().positive(), 512),
  TALOS_BACKFILL_MAX: withDefault(z.coerce.number().int().min(0), 1_000),
  // Markdown of untrusted text is parsed in worker threads; a parse that takes longer than this
  // is abandoned and the text treated as plain text (escaped, never a command).
  TALOS_MARKDOWN_DEADLINE_MS: withDefault(z.coerce.number().int().min(50).max(60_000), 1_000),
  // Prometheus metrics: on a listener of their own (bound to 127.0.0.1 unless told otherwise),
  // or on the main port behind a bearer token. Neither set: no metrics are served.
  TALOS_METRICS_PORT: z.preprocess(
    unsetIfBlank,
    z.coerce.number().int().min(0).max(65_535).optional(),
  ),
  TALOS_METRICS_HOST: withDefault(z.string().min(1), "127.0.0.1"),
  // Probot reads the port itself (3000 when unset); checked here so a bad one stops the start.
  PORT: z.preprocess(
    unsetIfBlank,
    z.coerce
      .number({ error: "use a port number from 1 to 65535" })
      .int("use a port number from 1 to 65535")
      .min(1, "use a port number from 1 to 65535")
      .max(65_535, "use a port number from 1 to 65535")
      .optional(),
  ),
  // Probot reads the app's id itself; `talos backfill` authenticates as the app with it.
  APP_ID: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .string()
      .regex(/^[1-9]\d*$/, "use the GitHub App's id, a positive whole number")
      .optional(),
  ),
  // Values that must never reach a log line.
  PRIVATE_KEY: optionalString,
  PRIVATE_KEY_PATH: optionalString,
  WEBHOOK_SECRET: optionalString,
  GITHUB_CLIENT_SECRET: optionalString,
  GITHUB_TOKEN: optionalString,
  OPENAI_API_KEY: optionalString,
  TALOS_METRICS_TOKEN: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z
      .string()
      .min(16, "use a token of at least 16 characters")
      // Twenty spaces passed, and served /metrics on the public port to a bearer of blanks.
      .refine(
        (token) => token.trim().length >= 16,
        "use a token of at least 16 characters, not blanks",
      )
      // HTTP drops them from a header's value: no scraper could present the token, for ever.
      .refine(
        (token) => token === token.trim(),
        "remove the blanks at its start or end (a request's header cannot carry them)",
      )
      .optional(),
  ),
});
export type Env = z.infer<typeof EnvSchema>;

export type SecretVariable =
  | "PRIVATE_KEY"
  | "WEBHOOK_SECRET"
  | "GITHUB_CLIENT_SECRET"
  | "GITHUB_TOKEN"
  | "OPENAI_API_KEY"
  | "TALOS_METRICS_TOKEN"
  | "REDIS_URL"
  | "DATABASE_URL"
  | "OPENAI_BASE_URL";

/**
 * The configured values that must never reach a log line or the model. It takes the raw
 * environment too, so that an error printed before it parses is scrubbed as well.
 */
export function getSecrets(
  env: Partial<Record<SecretVariable, string | undefined>>,
): Array<string | undefined> {
  return [
    env.PRIVATE_KEY,
    env.WEBHOOK_SECRET,
    env.GITHUB_CLIENT_SECRET,
    env.GITHUB_TOKEN,
    env.OPENAI_API_KEY,
    env.TALOS_METRICS_TOKEN,
    ...passwordsOf(env.REDIS_URL),
    ...passwordsOf(env.DATABASE_URL),
    // A proxy in front of the model may take its credentials in the URL.
    ...passwordsOf(env.OPENAI_BASE_URL),
  ];
}

/**
 * A service URL's passwords, which must not reach a log line either: the one before the host,
 * and a `?password=`, which node-postgres and ioredis read as well; each as written in the URL
 * (what an error quoting it shows) and decoded (what a client's error may show).
 */
function passwordsOf(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const parsed = new URL(url);
    const inQuery = /(?:^\?|&)password=([^&]*)/.exec(parsed.search)?.[1] ?? "";
    const written = [parsed.password, inQuery];
    return [...written, ...written.map(decodeOrKeep)].filter(Boolean);
  } catch {
    return [];
  }
}

function decodeOrKeep(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The REST API's base URL: api.github.com, or a GitHub Enterprise Server's /api/v3. */
export function getGitHubApiUrl(env: Env): string {
  return env.GHE_HOST ? `${env.GHE_PROTOCOL}://${env.GHE_HOST}/api/v3` : "https://api.github.com";
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * The smallest room a job's first prompt needs: the system and task prompts and the tools'
 * definitions come to about 1,200 tokens before the question and its thread.
 */
const LEAST_PROMPT_TOKENS = 2_000;

/**
 * Parses the environment; a bad value fails start-up with the variable's name. With APP_ID set,
 * the private key must be one Probot can load (`cwd` is where PRIVATE_KEY_PATH and a `.pem`
 * file are looked for, as Probot does).
 */
export function parseEnv(
  env: Record<string, string | undefined>,
  { cwd = process.cwd() }: { cwd?: string } = {},
): Env {
  const result = EnvSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid environment: ${problems.join("; ")}`);
  }
  // Every model call must fit its prompt and the answer's room in the job's cap: under that,
  // every command and automation would be refused, each with a notice, and never answered.
  const jobTokens = result.data.TALOS_AGENT_MAX_TOKENS;
  const leastJobTokens = result.data.TALOS_LLM_MAX_OUTPUT_TOKENS + LEAST_PROMPT_TOKENS;
  if (jobTokens < leastJobTokens) {
    throw new ConfigError(
      `Invalid environment: TALOS_AGENT_MAX_TOKENS: ${jobTokens} leaves no room for a prompt beside the answer's ${result.data.TALOS_LLM_MAX_OUTPUT_TOKENS} (TALOS_LLM_MAX_OUTPUT_TOKENS); set at least ${leastJobTokens}`,
    );
  }
  if (result.data.APP_ID !== undefined) checkPrivateKey(result.data, cwd);
  // A missing one is created when first written; a file in its place fails every write later.
  if (isNotDirectory(result.data.TALOS_DATA_DIR)) {
    throw new ConfigError(
      `Invalid environment: TALOS_DATA_DIR: ${result.data.TALOS_DATA_DIR} is not a directory`,
    );
  }
  return result.data;
}

/** Whether `path` is there but is no directory, or goes through a file (ENOTDIR). */
export function isNotDirectory(path: string): boolean {
  try {
    return !statSync(path).isDirectory();
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOTDIR";
  }
}

/**
 * What the server needs beyond parseEnv's checks (the CLI receives no webhooks): with the app's
 * credentials, its webhook secret. Without one Probot falls back to its public default,
 * "development", and anyone could sign deliveries, a maintainer's command included.
 */
export function checkServerEnv(env: Env): void {
  // Probot opens no setup page in production: it threw once every service was open (exit 1).
  if (env.APP_ID === undefined && env.NODE_ENV === "production")
    throw new ConfigError(
      "Invalid environment: APP_ID: not set, and NODE_ENV is production, where Probot opens no setup page: set APP_ID, PRIVATE_KEY and WEBHOOK_SECRET, or unset NODE_ENV to register the app from the setup page",
    );
  if (env.APP_ID === undefined) return;
  // Blanks are no secret: Probot would verify signatures with them (`secret || "development"`).
  if (!env.WEBHOOK_SECRET?.trim())
    throw new ConfigError(
      "Invalid environment: WEBHOOK_SECRET: APP_ID is set, but no webhook secret is (or only blanks): set the one in the app's settings on GitHub",
    );
  if (env.WEBHOOK_SECRET === "development")
    throw new ConfigError(
      "Invalid environment: WEBHOOK_SECRET: \"development\" is Probot's public default, with which anyone could sign deliveries; set the app's own secret",
    );
}

/**
 * The app's private key as Probot loads it: PRIVATE_KEY, the file PRIVATE_KEY_PATH names, or
 * else the one `.pem` file in `cwd`; null without APP_ID or a key. parseEnv has checked it, so
 * the server and every CLI command find the same key.
 */
export function appPrivateKey(env: Env, cwd = process.cwd()): string | null {
  if (env.APP_ID === undefined) return null;
  return getPrivateKey({
    cwd,
    env: { PRIVATE_KEY: env.PRIVATE_KEY, PRIVATE_KEY_PATH: env.PRIVATE_KEY_PATH },
  });
}

/** The `.pem` file Probot reads in `cwd` when no variable names a key: for messages. */
function lonePemFile(cwd: string): string {
  try {
    const [name] = readdirSync(cwd).filter((file) => file.endsWith(".pem"));
    return name === undefined ? `the .pem file in ${cwd}` : join(cwd, name);
  } catch {
    return `the .pem file in ${cwd}`;
  }
}

/** Loads the key as Probot will, so a bad one stops the start in one line (never echoing it). */
function checkPrivateKey(env: Env, cwd: string): void {
  // With neither variable set, Probot reads the one .pem file in the directory: no variable to name.
  const variable = env.PRIVATE_KEY
    ? "PRIVATE_KEY"
    : env.PRIVATE_KEY_PATH
      ? "PRIVATE_KEY_PATH"
      : `${lonePemFile(cwd)} (the .pem file read when neither PRIVATE_KEY nor PRIVATE_KEY_PATH is set)`;
  let key: string | null;
  try {
    key = appPrivateKey(env, cwd);
  } catch {
    throw new ConfigError(
      env.PRIVATE_KEY || env.PRIVATE_KEY_PATH
        ? `Invalid environment: ${variable}: ${
            env.PRIVATE_KEY
              ? "not a PEM private key (the .pem file's contents, with \\n for line breaks, or base64 of them)"
              : `cannot read a private key at ${env.PRIVATE_KEY_PATH}`
          }`
        : "Invalid environment: PRIVATE_KEY: APP_ID is set, but more than one .pem file is in the current directory; set PRIVATE_KEY or PRIVATE_KEY_PATH",
    );
  }
  if (key === null) {
    throw new ConfigError(
      "Invalid environment: PRIVATE_KEY: APP_ID is set, but no private key is: set PRIVATE_KEY or PRIVATE_KEY_PATH",
    );
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
    throw new ConfigError(
      env.PRIVATE_KEY
        ? `Invalid environment: PRIVATE_KEY: not a PEM private key (the .pem file's contents, with \\n for line breaks, or base64 of them)`
        : `Invalid environment: ${variable}: ${env.PRIVATE_KEY_PATH ?? "it"} does not hold a PEM private key`,
    );
  }
  // The PEM lines alone let a cut or edited key through, and the first JWT signed with it fails
  // ("DECODER routines::unsupported"). GitHub App keys are RSA: JWTs are signed with RS256.
  // https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
  let type: string | undefined;
  try {
    type = createPrivateKey(key).asymmetricKeyType;
  } catch {
    type = undefined;
  }
  if (type !== "rsa") {
    const source = env.PRIVATE_KEY
      ? "the PEM private key"
      : `the key in ${env.PRIVATE_KEY_PATH ?? "it"}`;
    const problem =
      type === undefined
        ? "cannot be read (cut short or edited?)"
        : `is ${type}, not the RSA key GitHub gives an app`;
    throw new ConfigError(`Invalid environment: ${variable}: ${source} ${problem}`);
  }
}

export const AUTHOR_ASSOCIATIONS = [
  "OWNER",
  "MEMBER",
  "COLLABORATOR",
  "CONTRIBUTOR",
  "FIRST_TIME_CONTRIBUTOR",
  "FIRST_TIMER",
  "MANNEQUIN",
  "NONE",
] as const;
export type AuthorAssociation = (typeof AUTHOR_ASSOCIATIONS)[number];

/** Every command a repository can switch off; the command registry must match this list. */
export const COMMAND_NAMES = [
  "help",
  "config",
  "ask",
  "summarize",
  "review",
  "similar",
  "remember",
  "forget",
] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export const REPO_CONFIG_PATH = ".github/talos.yml";

/**
 * Work-in-progress titles: `WIP …`, `[WIP] …`, `skip talos …`, any case. The word boundary keeps
 * "Wipe the cache" from reading as a WIP marker.
 */
export const DEFAULT_IGNORE_TITLE = "^\\[?(wip|skip talos)\\b";

/**
 * Titles are anyone's text and the pattern is the config's, so the pattern runs on RE2 (linear
 * time whatever the pattern), case-insensitively, never on JavaScript's backtracking engine.
 */
export function compileTitlePattern(pattern: string): RE2JS {
  return RE2JS.compile(pattern, RE2JS.CASE_INSENSITIVE);
}

function isLinearRegex(pattern: string): boolean {
  try {
    compileTitlePattern(pattern);
    return true;
  } catch {
    return false;
  }
}

/**
 * `.github/talos.yml`. The defaults live here, so `RepoConfigSchema.parse({})` is the default
 * config. Objects are strict so that a misspelt key is reported rather than silently ignored.
 */
export const RepoConfigSchema = z
  .strictObject({
    _extends: z
      .string()
      .optional()
      .describe(
        "inherit settings from another repository's file: `repo`, `owner/repo` or `owner/repo:path`",
      ),
    commands: z
      .strictObject({
        allowed_associations: z
          .array(z.enum(AUTHOR_ASSOCIATIONS))
          .default(["OWNER", "MEMBER", "COLLABORATOR"])
          .describe("author_association values whose comments may run /talos commands"),
        help_for_everyone: z
          .boolean()
          .default(false)
          .describe("let anyone run `/talos help`, whatever their association"),
        disabled: z
          .array(z.enum(COMMAND_NAMES))
          .default([])
          .describe("commands switched off in this repository"),
      })
      .prefault({}),
    ask: z
      .strictObject({
        enabled: z.boolean().default(true).describe("answer `/talos ask <question>`"),
      })
      .prefault({}),
    summarize: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe("keep a summary comment with `/talos summarize`"),
      })
      .prefault({}),
    triage: z
      .strictObject({
        enabled: z.boolean().default(false).describe("propose labels for every new issue"),
        labels: z
          .array(z.string().min(1))
          .default([])
          .describe("only these existing labels may be proposed (empty: any existing label)"),
        apply_labels: z.boolean().default(false).describe("apply the proposed labels to the issue"),
        comment: z.boolean().default(false).describe("post a short comment with the proposal"),
      })
      .prefault({}),
    automation: z
      .strictObject({
        max_runs_per_hour: z
          .number()
          .int()
          .min(0)
          .default(20)
          .describe("automatic runs (triage, similar issues) per hour in this repository"),
      })
      .prefault({}),
    memory: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe("remember issues, pull requests, notes and answers of this repository"),
      })
      .prefault({}),
    budget: z
      .strictObject({
        daily_tokens: z
          .number()
          .int()
          .min(0)
          .optional()
          .describe(
            "model tokens this repository may spend per UTC day; can only lower the installation's budget",
          ),
      })
      .prefault({}),
    similar: z
      .strictObject({
        enabled: z.boolean().default(false).describe('comment "Possibly related: …" on new issues'),
        threshold: z
          .number()
          .min(0)
          .max(1)
          .optional()
          .describe(
            "the least similarity to count as related (default: the embedder's own, 0.7 for OpenAI embeddings, 0.4 for the local one)",
          ),
        max: z.number().int().min(1).max(10).default(3).describe("the most issues to name"),
      })
      .prefault({}),
    pull_requests: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            "keep one summary comment on each pull request, refreshed on every push (not for drafts, bots or ignored titles)",
          ),
        ignore_authors: z
          .array(z.string().min(1).max(100))
          .default([])
          .describe("logins whose pull requests get no summary (bots never do)"),
        ignore_title: z
          .string()
          .max(200)
          .refine(isLinearRegex, "not a valid regular expression (RE2 syntax)")
          .default(DEFAULT_IGNORE_TITLE)
          .describe("pull requests whose title matches this regular expression get no summary"),
      })
      .prefault({}),
    review: z
      .strictObject({
        enabled: z.boolean().default(true).describe("answer `/talos review` on pull requests"),
        on_push: z
          .boolean()
          .default(true)
          .describe("once a pull request has had a review, review each push's new changes"),
        max_comments: z
          .number()
          .int()
          .min(0)
          .max(50)
          .default(8)
          .describe("the most inline comments in one review, the most severe first"),
        max_tokens: z
          .number()
          .int()
          .min(1_000)
          .max(200_000)
          .default(20_000)
          .describe(
            "tokens of diff one review or summary reads; code first, then tests, docs, generated files",
          ),
        ignore: z
          .array(z.string().min(1).max(200))
          .default([])
          .describe("globs of files never reviewed nor summarized, e.g. `docs/**` or `*.snap`"),
      })
      .prefault({}),
  })
  .describe("Talos settings for this repository (.github/talos.yml)");
export type RepoConfig = z.infer<typeof RepoConfigSchema>;

/**
 * The environment as Probot sees it: the process environment with a `.env` file (if any) laid
 * over it, which is what `probot run` does too.
 */
export function loadEnvironment(
  cwd = process.cwd(),
  base: Record<string, string | undefined> = process.env,
): Record<string, string | undefined> {
  const path = join(cwd, ".env");
  let file: string;
  try {
    file = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { ...base };
    // A directory or a file without read permission: say which, in one line.
    throw new ConfigError(`cannot read ${path}: ${code ?? (error as Error).message}`);
  }
  return { ...base, ...parseDotEnv(file) };
}

/** The JSON Schema of `.github/talos.yml`, committed as schema/talos.schema.json for editors. */
export function getRepoConfigJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(RepoConfigSchema, { io: "input", target: "draft-07" }),
    $id: "https://github.com/talos-bot/talos/blob/main/schema/talos.schema.json",
    title: "Talos repository configuration",
  };
}

/**
 * LangChain sends traces to LangSmith when these variables say so. Talos may talk to GitHub and
 * the configured model endpoint only, so tracing is forced off, whatever the environment says.
 */
export function disableLangChainTracing(): void {
  for (const name of [
    "LANGSMITH_TRACING",
    "LANGSMITH_TRACING_V2",
    "LANGCHAIN_TRACING",
    "LANGCHAIN_TRACING_V2",
  ]) {
    process.env[name] = "false";
  }
}
