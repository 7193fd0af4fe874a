import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { Clock } from "../clock.js";

/** A prompt file that cannot be used: names the file and says why. */
export class PromptError extends Error {
  override name = "PromptError";
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/**
 * What tells one version of a file from another without reading it. The mtime alone does not:
 * build tools pin it (SOURCE_DATE_EPOCH, Nix) and rsync -t copies it, so a replacement of the
 * same size can carry the old one. A replacement is a new inode, and a write in place moves the
 * ctime, which no tool can set.
 */
export interface FileVersion {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** The file system calls the library makes; tests count them. */
export interface PromptFileSystem {
  stat(path: string): Promise<FileVersion>;
  readFile(path: string): Promise<string>;
  readdir(path: string): Promise<string[]>;
}

export const nodeFileSystem: PromptFileSystem = {
  // In nanoseconds: milliseconds as a float would round two writes a microsecond apart together.
  stat: (path) => stat(path, { bigint: true }),
  readFile: (path) => readFile(path, "utf8"),
  readdir: (path) => readdir(path),
};

export interface Prompt {
  name: string;
  description: string;
  variables: readonly string[];
  template: string;
}

const FrontMatter = z.strictObject({
  description: z.string().default(""),
  variables: z.array(z.string().regex(/^[a-z][a-z0-9_]*$/, "variable names are snake_case")),
});

/** The coarsest timestamp tick of the file systems prompts sit on (ext3, HFS+, some NFS). */
const TIMESTAMP_TICK_MS = 1_000;

/**
 * How long after its last change a file counts as saved. An editor saving in place truncates the
 * file, then writes it in chunks, each moving the ctime: a read between two of them can get half
 * the text, and half can parse (the cut after the last placeholder). Chunks come milliseconds
 * apart; two ticks, since a coarse file system stamps a change up to a tick early, so an age of
 * one tick proves none (found by a review).
 */
const SAVE_SETTLE_MS = 2 * TIMESTAMP_TICK_MS;

const PLACEHOLDER = /\{\{\s*([a-zA-Z0-9_]+)\s*\}\}/g;

/**
 * Parses a prompt file: YAML front matter declaring the variables, then the template, which
 * uses `{{name}}` placeholders. Every declared variable must be used and every placeholder
 * declared, so a typo fails when the file is loaded, not when the model reads the result.
 */
export function parsePrompt(name: string, file: string, text: string): Prompt {
  // A byte order mark (Notepad's UTF-8, Visual Studio's "with signature") is no text: readFile
  // keeps it, and the file was refused as missing the front matter it has.
  const unmarked = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const match = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?([\s\S]*)$/.exec(unmarked);
  if (!match) throw new PromptError(file, "missing the front matter (--- variables: [...] ---)");
  let header: unknown;
  try {
    header = parseYaml(match[1] ?? "");
  } catch (error) {
    throw new PromptError(file, `front matter is not valid YAML: ${(error as Error).message}`);
  }
  const parsed = FrontMatter.safeParse(header);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (i) => `${i.path.join(".") || "front matter"}: ${i.message}`,
    );
    throw new PromptError(file, problems.join("; "));
  }
  const template = (match[2] ?? "").trim();
  if (!template) throw new PromptError(file, "the template is empty");
  const used = new Set([...template.matchAll(PLACEHOLDER)].map((m) => m[1] ?? ""));
  const declared = new Set(parsed.data.variables);
  const undeclared = [...used].filter((v) => !declared.has(v));
  if (undeclared.length > 0)
    throw new PromptError(file, `undeclared variable(s): ${undeclared.join(", ")}`);
  const unused = [...declared].filter((v) => !used.has(v));
  if (unused.length > 0)
    throw new PromptError(file, `declared but unused variable(s): ${unused.join(", ")}`);
  return { name, description: parsed.data.description, variables: parsed.data.variables, template };
}

/**
 * Fills a template. Strict: a missing or an unknown variable throws. Values are inserted as
 * they are, in one pass, so text that looks like a placeholder inside a value stays text.
 */
export function renderPrompt(prompt: Prompt, values: Record<string, string>): string {
  const missing = prompt.variables.filter((v) => typeof values[v] !== "string");
  if (missing.length > 0)
    throw new Error(`prompt "${prompt.name}" is missing variable(s): ${missing.join(", ")}`);
  const unknown = Object.keys(values).filter((v) => !prompt.variables.includes(v));
  if (unknown.length > 0)
    throw new Error(`prompt "${prompt.name}" has no variable(s): ${unknown.join(", ")}`);
  return prompt.template.replace(PLACEHOLDER, (_all, name: string) => values[name] ?? "");
}

interface CachedPrompt {
  prompt: Prompt;
  /** The file as last read: its version, and its text (which may be a broken edit's). */
  version: FileVersion;
  text: string;
  /**
   * Whether a check since that read found the same version and the same text. Until then the
   * version proves nothing: a write in the timestamp tick of the read (a second, on some file
   * systems) leaves it as it was.
   */
  settled: boolean;
  /** When the text was read: the check that settles it must come a timestamp tick later. */
  readAt: number;
  checkedAt: number;
  /** The file could not be stat'ed or read at the last check (logged once, until it is back). */
  unreadable?: boolean;
}

export interface PromptLibraryOptions {
  directory: string;
  clock: Pick<Clock, "now">;
  /** A file is stat'ed at most once per this interval; edits show up within it. */
  checkIntervalMs: number;
  log: Logger;
  fs?: PromptFileSystem;
  /**
   * The prompts the code renders, with the variables it fills (PROMPT_VARIABLES): each must be
   * there and declare exactly those, or start-up fails.
   */
  required?: Readonly<Record<string, readonly string[]>>;
}

/**
 * The prompts under `prompts/`, loaded through a cache: a render costs no file access until the
 * check interval has passed, then one `stat`, and a read only when the file's version changed,
 * and once more at the check after, to see that the read did not race a write. New text is
 * served once a stat after its read shows the version unchanged and a second old (mayBeMidSave),
 * so a save in progress is not. An edit is picked up without a restart; an edit that breaks the
 * file, changes the variables it takes (the code still fills the old ones, so every render would
 * throw) or removes it keeps the last good version in use and is logged.
 */
export class PromptLibrary {
  readonly #options: PromptLibraryOptions;
  readonly #fs: PromptFileSystem;
  readonly #cache = new Map<string, CachedPrompt>();

  private constructor(options: PromptLibraryOptions) {
    this.#options = options;
    this.#fs = options.fs ?? nodeFileSystem;
  }

  /** Loads and checks every `*.md` prompt; a broken one fails here with its file and reason. */
  static async open(options: PromptLibraryOptions): Promise<PromptLibrary> {
    const library = new PromptLibrary(options);
    const fs = library.#fs;
    let entries: string[];
    try {
      entries = await fs.readdir(options.directory);
    } catch (error) {
      throw new PromptError(
        options.directory,
        `cannot read the prompt directory: ${(error as Error).message}`,
      );
    }
    // Hidden files are an editor's lock (.#name.md) or a copy's metadata (._name.md), no prompts.
    const files = entries.filter(
      (e) => e.endsWith(".md") && !e.startsWith(".") && e !== "README.md",
    );
    for (const entry of files.sort()) {
      await library.#load(entry.slice(0, -3), options.clock.now());
    }
    for (const [name, variables] of Object.entries(options.required ?? {})) {
      const cached = library.#cache.get(name);
      if (!cached)
        throw new PromptError(
          library.#file(name),
          `missing; Talos needs this prompt (variables: ${listOf(variables)})`,
        );
      checkVariables(cached.prompt, library.#file(name), variables);
    }
    return library;
  }

  names(): string[] {
    return [...this.#cache.keys()];
  }

  async get(name: string): Promise<Prompt> {
    const cached = this.#cache.get(name);
    if (!cached) throw new Error(`no prompt named "${name}" in ${this.#options.directory}`);
    const now = this.#options.clock.now();
    // A check time ahead of now is a wall clock stepped back since (NTP): the check is due, or
    // every edit would wait for the clock to catch up with it.
    if (now >= cached.checkedAt && now - cached.checkedAt < this.#options.checkIntervalMs)
      return cached.prompt;
    cached.checkedAt = now;
    const file = this.#file(name);
    let version: FileVersion;
    let text: string;
    let saving = false;
    try {
      version = await this.#fs.stat(file);
      if (cached.settled && isSameVersion(version, cached.version)) {
        cached.unreadable = false;
        return cached.prompt;
      }
      text = await this.#fs.readFile(file);
      // A stat after the read, for new text only (a rare read, so the common check still costs
      // one stat): a save that began after the first stat moved the version since.
      if (text !== cached.text) saving = mayBeMidSave(version, await this.#fs.stat(file), now);
    } catch (error) {
      // Removed, or being replaced (a checkout deletes, then writes): keep serving the last
      // version, and say so once.
      if (!cached.unreadable)
        this.#options.log.error(
          { err: error, file },
          "prompt file cannot be read; still using the previous version",
        );
      cached.unreadable = true;
      return cached.prompt;
    }
    cached.unreadable = false;
    if (text === cached.text) {
      // Read after its version was taken: a later write moves the version, once the read's
      // timestamp tick is over (the check interval may be shorter than a tick). A read time
      // ahead of now is a clock stepped back since: the tick counts from now, or the file would
      // be read at every check until the clock caught up.
      const same = isSameVersion(version, cached.version);
      if (!same || now < cached.readAt) Object.assign(cached, { version, readAt: now });
      cached.settled = same && now - cached.readAt >= TIMESTAMP_TICK_MS;
      return cached.prompt;
    }
    if (saving) {
      // Not adopted yet: the cache keeps the previous version, so the next check reads again.
      this.#options.log.debug({ file }, "prompt file is being saved; read again at the next check");
      return cached.prompt;
    }
    try {
      return (await this.#load(name, now, { version, text }, cached.prompt.variables)).prompt;
    } catch (error) {
      // Keep serving the last good version; a broken edit must not take the assistant down.
      Object.assign(cached, { version, text, settled: false, readAt: now });
      this.#options.log.error(
        { err: error, file },
        "prompt file changed but is broken; still using the previous version",
      );
      return cached.prompt;
    }
  }

  async render(name: string, values: Record<string, string>): Promise<string> {
    return renderPrompt(await this.get(name), values);
  }

  #file(name: string): string {
    return join(this.#options.directory, `${name}.md`);
  }

  /** Reads and parses a file; a reload (`variables` given) must declare the same variables. */
  async #load(
    name: string,
    now: number,
    read?: { version: FileVersion; text: string },
    variables?: readonly string[],
  ): Promise<CachedPrompt> {
    const file = this.#file(name);
    // The version first: a write after it moves it, so the next check sees the change.
    const version = read?.version ?? (await this.#fs.stat(file));
    const text = read?.text ?? (await this.#fs.readFile(file));
    const prompt = parsePrompt(name, file, text);
    if (variables) checkVariables(prompt, file, variables);
    const cached = { prompt, version, text, settled: false, readAt: now, checkedAt: now };
    this.#cache.set(name, cached);
    return cached;
  }
}

/**
 * Whether a read between stats `before` and `after` may have caught a save in the middle: the
 * version moved during the read, or it changed less than SAVE_SETTLE_MS before `now`. Such a read
 * is served only once a later check reads the file settled: an edit goes live at the first check
 * SAVE_SETTLE_MS after its last write. A ctime ahead of `now` (a clock stepped back, a file
 * server's clock ahead) gives no age, and is not waited for: a wait with no end would hold the
 * edit back. Waiting for a second check to see the same version would have delayed every edit by
 * a check interval.
 */
function mayBeMidSave(before: FileVersion, after: FileVersion, now: number): boolean {
  if (!isSameVersion(before, after)) return true;
  const age = now - Number(after.ctimeNs / 1_000_000n);
  return age >= 0 && age < SAVE_SETTLE_MS;
}

function isSameVersion(a: FileVersion, b: FileVersion): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** Throws unless `prompt` declares exactly `variables`, the ones the code fills. */
function checkVariables(prompt: Prompt, file: string, variables: readonly string[]): void {
  const declared = new Set(prompt.variables);
  if (declared.size === variables.length && variables.every((v) => declared.has(v))) return;
  throw new PromptError(
    file,
    `declares ${listOf(prompt.variables)}; the code fills ${listOf(variables)}`,
  );
}

function listOf(names: readonly string[]): string {
  return names.length > 0 ? names.join(", ") : "none";
}
