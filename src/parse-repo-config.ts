import { COMMAND_NAMES, REPO_CONFIG_PATH, RepoConfigSchema, type RepoConfig } from "./config.js";
import { quotedCode } from "./markdown/safe-text.js";

export interface ParsedRepoConfig {
  config: RepoConfig;
  /**
   * Human-readable problems, each naming the field and the file. Empty when the file is valid.
   * Markdown, one line each: every key or value from the file is a capped code span
   * (`quotedCode`), since the file is hostile and `/talos config` posts them.
   */
  errors: string[];
}

/**
 * What each setting falls back to when `.github/talos.yml` gets it wrong, where its default
 * could give more than the maintainers meant: who may run commands, what runs, what is written.
 * A mistake must never widen what Talos does, so each is the narrowest value that still lets a
 * maintainer find the problem (`/talos config` stays available to the owner).
 */
export const RESTRICTIVE_SETTINGS: Readonly<Record<string, unknown>> = {
  "commands.allowed_associations": ["OWNER"],
  "commands.help_for_everyone": false,
  "commands.disabled": COMMAND_NAMES.filter((name) => name !== "config"),
  "ask.enabled": false,
  "summarize.enabled": false,
  "triage.enabled": false,
  // Empty means "any existing label"; an invalid list turns triage off instead (see below).
  "triage.labels": [],
  "triage.apply_labels": false,
  "triage.comment": false,
  "automation.max_runs_per_hour": 0,
  "memory.enabled": false,
  "budget.daily_tokens": 0,
  "similar.enabled": false,
  "similar.threshold": 1,
  "similar.max": 1,
  "pull_requests.enabled": false,
  // Matches every title: no summary anywhere.
  "pull_requests.ignore_title": "",
  "pull_requests.ignore_authors": [],
  "review.enabled": false,
  "review.on_push": false,
  "review.max_comments": 0,
  "review.max_tokens": 1_000,
  "review.ignore": [],
};

/**
 * Lists whose restrictive value, empty, is not the narrowest: no `triage.labels` lets triage apply
 * any existing label, no `pull_requests.ignore_authors` gives everyone's pull requests automatic
 * work, no `review.ignore` sends every file to the model. So a mistake in one switches off what it
 * limits (`off`) instead. A misspelt key counts as a mistake in the list it is a near miss of, as
 * an invalid value does: it may have held the list, and reading neither would mean "unlimited".
 * An allow-list still limits while one valid item is left; a deny-list that lost anything lets
 * through what the maintainers meant to keep out, so there any mistake counts.
 */
const GUARDED_LISTS: ReadonlyArray<{
  field: string;
  kind: "allow" | "deny";
  off: readonly string[];
  problem: string;
  outcome: string;
}> = [
  {
    field: "triage.labels",
    kind: "allow",
    off: ["triage.enabled"],
    problem: "names no valid label",
    outcome: "triage is off until it does",
  },
  {
    // Authors it names get neither summaries nor reviews on push (see skipReason).
    field: "pull_requests.ignore_authors",
    kind: "deny",
    off: ["pull_requests.enabled", "review.on_push"],
    problem: "has a mistake",
    outcome: "pull-request summaries are off (and reviews on push) until it is fixed",
  },
  {
    // Summaries read the changed files through the same globs as reviews.
    field: "review.ignore",
    kind: "deny",
    off: ["review.enabled", "review.on_push", "pull_requests.enabled"],
    problem: "has a mistake",
    outcome: "reviews and pull-request summaries are off until it is fixed",
  },
];

const MAX_REPAIR_ROUNDS = 10;
/** The most keys a file's mappings hold together that it reads, ten times what it sets. */
const MAX_KEYS = 500;

/**
 * The keys of `value`'s mappings, nested ones included, counted up to just past `limit`. An
 * object met again through a YAML alias counts again but is walked once: an alias can make a list
 * that holds itself (`x: &x [*x]`), which was walked for ever, and the server with it.
 */
function countKeys(value: unknown, limit: number): number {
  let count = 0;
  const walked = new Set<object>();
  const pending: unknown[] = [value];
  while (pending.length > 0 && count <= limit) {
    const next = pending.pop();
    if (typeof next !== "object" || next === null) continue;
    const values = Array.isArray(next) ? next : Object.values(next);
    if (!Array.isArray(next)) count += values.length;
    if (walked.has(next)) continue;
    walked.add(next);
    pending.push(...values.slice(0, limit));
  }
  return count;
}

/** The config a file that cannot be read at all stands for: every setting at its narrowest. */
export function restrictiveConfig(): RepoConfig {
  const config = RepoConfigSchema.parse({});
  for (const [field, value] of Object.entries(RESTRICTIVE_SETTINGS))
    setPath(config, field.split("."), structuredClone(value));
  return config;
}

/**
 * Validates a raw config object, mistake by mistake, always toward less power:
 * - an invalid item of a list is dropped alone (an unknown command in `commands.disabled` that is
 *   a near miss of a command's name is read as that command, since disabling is the safe side);
 * - an invalid value falls back to its entry in RESTRICTIVE_SETTINGS (or its default, where no
 *   default can widen anything);
 * - an unknown key is ignored, and when it is a near miss of a setting (or a section) the file
 *   does not set, that setting (or that section's settings) takes its restrictive value; one
 *   near no name does so for the unset settings it may have held (heldSettings), and for those
 *   of other sections whose own name it is near (misplacedSettings);
 * - a mistake in a list of GUARDED_LISTS (an invalid value, a dropped item, or an unknown key that
 *   may have held the list) switches off what the list limits, rather than leave it unlimited.
 * Every mistake is reported, naming the field and the file.
 */
export function parseRepoConfig(raw: unknown, file = REPO_CONFIG_PATH): ParsedRepoConfig {
  return parseRepoConfigFiles([raw], file);
}

/**
 * `.github/talos.yml` and the files it extends (`_extends`), the nearest first, read as one. A
 * file's merge keys are its own, so they are applied before the files are merged: applied after,
 * a setting the base file sets itself beat one the nearer file merges in.
 */
export function parseRepoConfigFiles(
  configs: unknown[],
  file = REPO_CONFIG_PATH,
): ParsedRepoConfig {
  try {
    // Counted before merge keys copy what they merge: 99 `<<: *big` of one 6,000-key mapping
    // (under the parser's 100 aliases) made 600,000 keys, 0.7 s at every event (found by a review).
    if (configs.some((config) => countKeys(config, MAX_KEYS) > MAX_KEYS)) return tooManyKeys(file);
    // Copies: merge keys are applied in place, and the caller's values stay as they were.
    const own = configs.map((config) => applyMergeKeys(structuredClone(config)));
    // `_extends` is followed (by Probot's plugin, before this) only as the file's own key: one a
    // merge key brings in was read as set and never followed, its base's narrower settings
    // dropped without a word (found by a review).
    if (
      own.some((config, index) => hasKey(config, "_extends") && !hasKey(configs[index], "_extends"))
    )
      return mergedExtends(file);
    return readConfigValue(mergeConfigs(own, { left: MAX_KEYS * configs.length }), file);
  } catch (error) {
    if (error instanceof TooManyKeysError) return tooManyKeys(file);
    // A file no reading of which was foreseen (aliases make lists that hold themselves, and
    // nesting deeper than the stack): it may have narrowed anything, so assume it did.
    const reason = error instanceof Error ? error.message : String(error);
    return {
      config: restrictiveConfig(),
      errors: [
        `${file}: cannot be read (${quotedCode(reason, 200)}); using the most restrictive settings`,
      ],
    };
  }
}

function readConfigValue(raw: unknown, file: string): ParsedRepoConfig {
  if (raw === null || raw === undefined) return { config: RepoConfigSchema.parse({}), errors: [] };
  if (typeof raw !== "object" || Array.isArray(raw)) {
    return {
      config: restrictiveConfig(),
      errors: [
        `${file}: the top level must be a mapping of settings; using the most restrictive settings`,
      ],
    };
  }
  // Each unknown key is reported, with the settings it nearly names: thousands of them (a 64 KB
  // file holds 7,000) cost 0.1 s at every event, and are no file anyone meant.
  if (countKeys(raw, MAX_KEYS) > MAX_KEYS) return tooManyKeys(file);
  let candidate: unknown = raw;
  const errors: string[] = [];
  const forced = new Set<string>();
  // Fields a mistake touched, each with the unknown keys that were near misses of it.
  const mistaken = new Map<string, Set<string>>();
  const noteMistake = (field: string, nearMiss?: string) => {
    const keys = mistaken.get(field) ?? new Set<string>();
    if (nearMiss !== undefined) keys.add(nearMiss);
    mistaken.set(field, keys);
  };
  // Lists an item was dropped from (not read as meant).
  const dropped = new Set<string>();
  let config: RepoConfig | undefined;
  for (let round = 0; round < MAX_REPAIR_ROUNDS && !config; round++) {
    const result = RepoConfigSchema.safeParse(candidate);
    if (result.success) {
      config = result.data;
      break;
    }
    const items: PropertyKey[][] = [];
    for (const issue of result.error.issues) {
      const path = issue.path;
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) {
          const unknown = [...path, key];
          const value = getPath(candidate, unknown);
          const near = nearMisses(path, key);
          // A near miss says what was meant; a key near no name may have held settings of its
          // own section, or of another that its name is near.
          const meant =
            near.length > 0
              ? near
              : [
                  ...heldSettings(path, value).filter(
                    (field) => !isSet(candidate, field.split(".")),
                  ),
                  ...misplacedSettings(path, key, value),
                ].filter((field, i, all) => all.indexOf(field) === i);
          const taken = meant.filter((field) => !isSet(candidate, field.split(".")));
          const narrowed =
            taken.length > 0
              ? `; ${taken.map((field) => quotedCode(field)).join(", ")} ${
                  taken.length > 1 ? "take their" : "takes its"
                } most restrictive value until it is fixed`
              : "";
          errors.push(
            `${file}: ${quotedCode(unknown.join("."))} is not a known setting (ignored)${narrowed}`,
          );
          candidate = removePath(candidate, unknown);
          for (const field of meant) {
            forced.add(field);
            noteMistake(field, unknown.join("."));
          }
        }
      } else if (typeof path.at(-1) === "number") {
        items.push(path);
      } else {
        const field = path.join(".");
        const fallback = restrictiveFields(field);
        errors.push(
          `${file}: ${field ? quotedCode(field) : "(top level)"} is invalid (${issue.message}); ${
            fallback.length > 0 ? "using the most restrictive value" : "using the default"
          }`,
        );
        candidate = removePath(candidate, path);
        for (const each of fallback) {
          forced.add(each);
          noteMistake(each);
        }
      }
    }
    // Later items first, so that dropping one does not move the others.
    for (const path of items.sort((a, b) => Number(b.at(-1)) - Number(a.at(-1)))) {
      noteMistake(path.slice(0, -1).join("."));
      candidate = repairItem(candidate, path, file, errors, dropped);
    }
  }
  config ??= restrictiveConfig();
  // A deny-list: the command a dropped item named would run. Every command but `config` (which
  // shows the mistake) is off until it is fixed.
  if (dropped.has("commands.disabled")) {
    setPath(
      config,
      ["commands", "disabled"],
      structuredClone(RESTRICTIVE_SETTINGS["commands.disabled"]),
    );
    errors.push(
      `${file}: ${quotedCode("commands.disabled")} has a mistake; every command but ${quotedCode("config")} is off until it is fixed`,
    );
  }
  // An allow-list of associations that lost every item would let nobody in, the owner included:
  // `/talos config`, which shows the mistake, could not be run. Its fallback lets only the owner.
  if (
    dropped.has("commands.allowed_associations") &&
    config.commands.allowed_associations.length === 0
  ) {
    config.commands.allowed_associations = ["OWNER"];
    errors.push(
      `${file}: ${quotedCode("commands.allowed_associations")} names no valid association; only ${quotedCode("OWNER")} may run commands until it is fixed`,
    );
  }
  for (const field of forced) {
    if (!isSet(candidate, field.split("."))) {
      setPath(config, field.split("."), structuredClone(RESTRICTIVE_SETTINGS[field]));
    }
  }
  for (const { field, kind, off, problem, outcome } of GUARDED_LISTS) {
    const nearMissKeys = mistaken.get(field);
    if (nearMissKeys === undefined) continue;
    const list = getPath(config, field.split(".")) as readonly unknown[];
    if (kind === "allow" && list.length > 0) continue;
    if (!off.some((each) => getPath(config, each.split(".")) === true)) continue;
    for (const each of off) setPath(config, each.split("."), false);
    const keys = [...nearMissKeys].map((key) => quotedCode(key));
    const meant =
      keys.length > 0
        ? ` (${keys.join(", ")} ${keys.length > 1 ? "look" : "looks"} meant for it)`
        : "";
    errors.push(`${file}: ${quotedCode(field)} ${problem}${meant}; ${outcome}`);
  }
  return { config, errors };
}

/**
 * YAML 1.1's merge keys, which the YAML 1.2 parser Probot uses reads as a key named `<<`:
 * `commands: { <<: *owners_only }` takes the anchored mapping's settings, keys the mapping itself
 * sets first, then the earlier of several merged. Read as a key, it was an unknown setting, and
 * the settings it held (a narrower `allowed_associations`, say) took their defaults. A `<<` whose
 * value is no mapping stays, and is reported as unknown.
 */
function applyMergeKeys(value: unknown, seen = new Set<object>()): unknown {
  if (typeof value !== "object" || value === null || seen.has(value)) return value;
  // Aliases share one object: each is merged once.
  seen.add(value);
  if (Array.isArray(value)) {
    value.forEach((item) => applyMergeKeys(item, seen));
    return value;
  }
  const mapping = value as Record<string, unknown>;
  for (const key of Object.keys(mapping)) applyMergeKeys(mapping[key], seen);
  const merged = mapping["<<"];
  const sources = Array.isArray(merged) ? merged : [merged];
  if (!sources.every(isMapping)) return value;
  delete mapping["<<"];
  for (const source of sources)
    for (const [key, each] of Object.entries(source)) if (!(key in mapping)) mapping[key] = each;
  return value;
}

class TooManyKeysError extends Error {}

function hasKey(value: unknown, key: string): boolean {
  return typeof value === "object" && value !== null && Object.hasOwn(value, key);
}

function mergedExtends(file: string): ParsedRepoConfig {
  return {
    config: restrictiveConfig(),
    errors: [
      `${file}: \`_extends\` comes from a merge key (\`<<\`), which Talos does not follow; write it as a key of the file. Using the most restrictive settings`,
    ],
  };
}

function tooManyKeys(file: string): ParsedRepoConfig {
  return {
    config: restrictiveConfig(),
    errors: [
      `${file}: has more than ${MAX_KEYS} keys (Talos has ${Object.keys(RESTRICTIVE_SETTINGS).length} settings); using the most restrictive settings`,
    ],
  };
}

/**
 * The files, nearest first, merged: the nearer file's value wins, mappings merged key by key.
 * A list replaces the inherited one: concatenated (Probot's default merge), an allow-list the
 * repository narrowed (`allowed_associations: [OWNER]`) would take back what its base allows.
 * A file that is not a mapping is returned as it is, for the parser to refuse.
 * Each key met is paid for from `budget`: an alias can make a mapping that holds itself, and two
 * such mappings at one key, merged key by key, recursed until the stack overflowed, which failed
 * the event. (The parser refuses the "billion laughs", one mapping shared at every level.)
 */
function mergeConfigs(configs: unknown[], budget: { left: number }): unknown {
  const notMapping = configs.find((config) => !isMapping(config));
  if (notMapping !== undefined) return notMapping;
  return configs.reduceRight((base, nearer) => mergeValues(base, nearer, budget));
}

function mergeValues(base: unknown, nearer: unknown, budget: { left: number }): unknown {
  if (!isMapping(base) || !isMapping(nearer)) return nearer;
  const keys = new Set([...Object.keys(base), ...Object.keys(nearer)]);
  budget.left -= keys.size;
  if (budget.left < 0) throw new TooManyKeysError();
  // fromEntries defines keys, so a `__proto__` key stays a key.
  return Object.fromEntries(
    [...keys].map((key) => [
      key,
      !Object.hasOwn(nearer, key)
        ? base[key]
        : Object.hasOwn(base, key)
          ? mergeValues(base[key], nearer[key], budget)
          : nearer[key],
    ]),
  );
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Drops one invalid list item, or reads a misspelt command in `commands.disabled` as meant. */
function repairItem(
  candidate: unknown,
  path: PropertyKey[],
  file: string,
  errors: string[],
  dropped: Set<string>,
): unknown {
  const index = Number(path.at(-1));
  const listPath = path.slice(0, -1);
  const list = getPath(candidate, listPath);
  if (!Array.isArray(list)) return candidate;
  const value = list[index];
  const field = listPath.join(".");
  const item = `${quotedCode(`${field}[${index}]`)} (${quotedCode(JSON.stringify(value) ?? String(value))})`;
  const meant =
    field === "commands.disabled" && typeof value === "string" ? nearestCommand(value) : undefined;
  if (meant) {
    errors.push(`${file}: ${item} is not a command; read as ${quotedCode(meant)}`);
    list[index] = meant;
  } else {
    errors.push(`${file}: ${item} is invalid; dropped`);
    list.splice(index, 1);
    dropped.add(field);
  }
  return candidate;
}

/**
 * The one command `value` is a near miss of: one edit from a name of four letters or fewer, two
 * from a longer one. Read as a command, an entry disables that one alone, so a looser match
 * widens: `all` and `any`, two edits from `ask`, had disabled `ask` and left the rest on.
 */
function nearestCommand(value: string): string | undefined {
  const word = value.toLowerCase();
  const near = COMMAND_NAMES.filter(
    (name) => editDistance(word, name) <= (name.length <= 4 ? 1 : 2),
  );
  return near.length === 1 ? near[0] : undefined;
}

/** The settings directly in `section` (none at the top level, where the sections are). */
function settingsOf(section: string): string[] {
  return Object.keys(RESTRICTIVE_SETTINGS).filter(
    (field) => field.startsWith(`${section}.`) && !field.slice(section.length + 1).includes("."),
  );
}

/**
 * What an unknown key in `path`, near no setting's name, may have held, judged by its `value`
 * (read as neither, each took its default, which can mean no limit at all):
 * - in a section of one setting (`budget: { max_daily_tokens: 1000 }`, `ask: { disabled: true }`),
 *   that setting, whatever the value;
 * - a mapping, the settings it names: its section's (`commands: { only: { allowed_associations:
 *   […] } }`) or, at the top level, whole sections (`talos: { commands: …, review: … }`, a
 *   wrapper around the file). Reading the wrapper's own values instead could still widen
 *   (`allowed_associations: [OWNER, MEMBER]` there); the restrictive values cannot;
 * - any other value, the settings of its section it could have been (`exclude: secrets/**` or
 *   `[secrets/**]` for `review.ignore`, `permitted: OWNER` for `commands.allowed_associations`).
 */
function heldSettings(path: PropertyKey[], value: unknown): string[] {
  const own = settingsOf(path.join("."));
  if (own.length === 1) return own;
  if (isMapping(value))
    return Object.keys(value)
      .filter((name) => name !== "")
      .flatMap((name) => restrictiveFields([...path, name].join(".")));
  return own.filter((field) => couldHold(field, value));
}

/** Whether `value` could have been meant for `field`: a value of its kind, or a list's one item. */
function couldHold(field: string, value: unknown): boolean {
  const restrictive = RESTRICTIVE_SETTINGS[field];
  return Array.isArray(restrictive)
    ? Array.isArray(value) || typeof value === "string"
    : typeof value === typeof restrictive;
}

/** The restrictive settings at or under `field` (a section names all of its settings). */
function restrictiveFields(field: string): string[] {
  return Object.keys(RESTRICTIVE_SETTINGS).filter(
    (each) => field === "" || each === field || each.startsWith(`${field}.`),
  );
}

/** The settings an unknown key probably meant: a near miss of a setting or a section's name. */
function nearMisses(path: PropertyKey[], key: string): string[] {
  const parent = path.join(".");
  const siblings = new Set(
    Object.keys(RESTRICTIVE_SETTINGS)
      .filter((field) => parent === "" || field.startsWith(`${parent}.`))
      .map((field) => field.slice(parent ? parent.length + 1 : 0).split(".")[0]!),
  );
  const near = [...siblings].filter((name) => editDistance(key.toLowerCase(), name) <= 2);
  return near.flatMap((name) => restrictiveFields(parent ? `${parent}.${name}` : name));
}

/**
 * The settings of other sections whose own name `key` is near, when `value` could have been
 * theirs: `daily_tokens: 1000` or `labels: [bug]` at the top level, a YAML indentation slip, is
 * `budget.daily_tokens` or `triage.labels` meant. Read as neither, each took its default: no
 * budget, or triage free to apply any label the issue's author talked the model into (found by
 * reviews). `levels: 3` held no labels, and triage stays as it was.
 */
function misplacedSettings(path: PropertyKey[], key: string, value: unknown): string[] {
  const parent = path.join(".");
  return Object.keys(RESTRICTIVE_SETTINGS).filter((field) => {
    const dot = field.lastIndexOf(".");
    return (
      field.slice(0, dot) !== parent &&
      couldHold(field, value) &&
      editDistance(key.toLowerCase(), field.slice(dot + 1)) <= 2
    );
  });
}

/** Levenshtein distance of two short names; anything long is simply far. */
function editDistance(a: string, b: string): number {
  if (a.length > 40 || b.length > 40) return Infinity;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

function getPath(value: unknown, path: PropertyKey[]): unknown {
  return path.reduce<unknown>(
    (at, key) =>
      typeof at === "object" && at !== null ? (at as Record<PropertyKey, unknown>)[key] : undefined,
    value,
  );
}

function isSet(value: unknown, path: string[]): boolean {
  return getPath(value, path) !== undefined;
}

function setPath(target: object, path: string[], value: unknown): void {
  let at = target as Record<string, unknown>;
  for (const key of path.slice(0, -1)) {
    at[key] ??= {};
    at = at[key] as Record<string, unknown>;
  }
  at[path.at(-1)!] = value;
}

/**
 * Drops the value at `path`, so that the schema default applies there. In place: the candidate
 * is parseRepoConfig's own clone, and copying it for each of thousands of unknown keys would
 * take time quadratic in the file's size.
 */
function removePath(value: unknown, path: PropertyKey[]): unknown {
  if (path.length === 0) return {};
  const parent = getPath(value, path.slice(0, -1));
  if (typeof parent === "object" && parent !== null && !Array.isArray(parent))
    delete (parent as Record<PropertyKey, unknown>)[path.at(-1)!];
  return value;
}
