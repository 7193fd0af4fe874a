import type { Octokit, OctokitOptions } from "@octokit/core";
import { composeConfigGet } from "@probot/octokit-plugin-config";
import { LRUCache } from "lru-cache";
import { parse } from "yaml";
import { yamlNestingDepth } from "./yaml-nesting-depth.js";

type GetOptions = Parameters<typeof composeConfigGet>[1];
type GetResult = Awaited<ReturnType<typeof composeConfigGet>>;
/** A request as the plugin makes it: `GET /repos/{owner}/{repo}/contents/{path}`, raw. */
type Endpoint = { method: string; url: string } & Record<string, unknown>;

/** One file a config read fetched: its text, or null where GitHub answered 404. */
interface FileRead {
  endpoint: Endpoint;
  text: string | null;
}

/** A config read: the files it fetched, in order, and what they made, or the parse's error. */
type ConfigRead = { files: FileRead[] } & ({ result: GetResult } | { error: unknown });

/**
 * The longest config file read, in characters. Anyone who installs the app writes the file, and
 * its YAML parse runs on the event loop every server's events share, in time that grows faster
 * than its size (with the duplicate-key check, about 0.1 s for 32 KB of keys, 0.5 s for 64 KB,
 * 2 s for 128 KB): a longer file is refused, unparsed, and its repository gets the most
 * restrictive settings. 2,000 labels take about 50 KB.
 */
export const MAX_CONFIG_CHARS = 64 * 1024;

export class ConfigTooLargeError extends Error {
  constructor(readonly chars: number) {
    super(`a config file is ${chars} characters long, over the ${MAX_CONFIG_CHARS} Talos reads`);
    this.name = "ConfigTooLargeError";
  }
}

/**
 * The deepest nesting of a config file read (see yamlNestingDepth). The YAML parser recurses per
 * level: 1,000 levels (2 KB of `[`) overflow its stack, and a few such parses in a row aborted
 * the process (V8's "RegExpCompiler Allocation failed", found by a review). A config needs a
 * handful of levels.
 */
export const MAX_CONFIG_DEPTH = 64;

export class ConfigTooDeepError extends Error {
  constructor(readonly depth: number) {
    super(`a config file nests ${depth} levels deep, over the ${MAX_CONFIG_DEPTH} Talos reads`);
    this.name = "ConfigTooDeepError";
  }
}

/**
 * The most files one config read fetches: the repository's file, the owner's `.github` fallback
 * when it has none, and what `_extends` names from there. Probot's plugin follows `_extends`
 * until a file has none, refusing only a file read twice, so a chain of files each under the
 * bounds above (`c1.yml` extends `c2.yml`, …) had each fetched and parsed at every event (about
 * 0.5 s a 64 KB file, found by a review). A real chain is three or four files long.
 */
export const MAX_CONFIG_FILES = 5;

/**
 * The most characters of all the files one config read fetches: two files of the longest kind.
 * So a read parses for about 1 s at most, and is small enough for the memo to keep (below), so
 * that it is parsed once while its files stay the same, refused or not.
 */
export const MAX_CONFIG_CHAIN_CHARS = 2 * MAX_CONFIG_CHARS;

/** A read that would fetch more than MAX_CONFIG_FILES files; `next` is the one not fetched. */
export class ConfigChainTooLongError extends Error {
  constructor(readonly next: string) {
    super(
      `a config's \`_extends\` chain reaches ${next}, past the ${MAX_CONFIG_FILES} files Talos reads`,
    );
    this.name = "ConfigChainTooLongError";
  }
}

export class ConfigChainTooLargeError extends Error {
  constructor(readonly chars: number) {
    super(
      `a config's files are ${chars} characters long together, over the ${MAX_CONFIG_CHAIN_CHARS} Talos reads`,
    );
    this.name = "ConfigChainTooLargeError";
  }
}

/** The config reads of this process, by installation, repository and path. */
export type ConfigMemo = LRUCache<string, ConfigRead>;

/**
 * Bounded by bytes, as the GitHub cache is: a config file is usually a few hundred bytes. One
 * read bigger than an eighth of the bound is not kept; with the default bound, every read within
 * MAX_CONFIG_CHAIN_CHARS, or refused for passing it (by one file at most), is kept.
 */
export function createConfigMemo(maxBytes = 8 * 2 ** 20): ConfigMemo {
  return new LRUCache({
    maxSize: maxBytes,
    maxEntrySize: maxBytes / 8,
    // UTF-16 in RAM, for the texts and about as much again for what they parse into.
    sizeCalculation: (read) =>
      Math.max(1, 4 * read.files.reduce((sum, file) => sum + (file.text?.length ?? 0), 0)),
  });
}

export interface ConfigMemoPluginOptions {
  talos?: { configs?: ConfigMemo | undefined; installation: string };
}

/**
 * `octokit.config.get`, which `loadRepoConfig` uses, with its YAML parse done once per version of
 * the files. Probot's config plugin fetches `.github/talos.yml` (through the cache) and parses it
 * on every event: about 4% of the CPU a delivery costs in the events bench, and 13 ms an event
 * for a 50 KB file (2,000 labels). Here a read that fetched the same texts as the last one,
 * file by file, in order, gives the last one's result: what the plugin returns depends only on
 * those texts (the next file it reads, `_extends` or the owner's `.github` fallback, is named by
 * the one before), so the result is the same, and each read still asks GitHub, or the cache, for
 * each file. Registered after the plugin, whose `config` it replaces.
 */
export function configMemoPlugin(octokit: Octokit, options: OctokitOptions) {
  const talos = (options as ConfigMemoPluginOptions).talos;
  const memo = talos?.configs;
  if (!talos || !memo) return {};
  return {
    config: {
      async get(params: GetOptions): Promise<GetResult> {
        const files: FileRead[] = [];
        let complete = true;
        let fetched = 0;
        let chars = 0;
        const request = Object.assign(
          async (endpoint: Endpoint) => {
            // Counted for this read alone. The file past the bound is not fetched; the refusal
            // depends only on the texts read before it, so it is kept as a parse error is.
            if (++fetched > MAX_CONFIG_FILES)
              throw new ConfigChainTooLongError(
                `${endpoint.owner}/${endpoint.repo}:${endpoint.path}`,
              );
            try {
              const response = await octokit.request(endpoint);
              const text = textOf(response);
              if (text !== undefined && text.length > MAX_CONFIG_CHARS)
                throw new ConfigTooLargeError(text.length);
              // Measured before the plugin parses it; over the bound, it is not parsed.
              const depth = text === undefined ? 0 : yamlNestingDepth(text);
              if (depth > MAX_CONFIG_DEPTH) throw new ConfigTooDeepError(depth);
              if (text === undefined) complete = false;
              else files.push({ endpoint, text });
              chars += text?.length ?? 0;
              if (chars > MAX_CONFIG_CHAIN_CHARS) throw new ConfigChainTooLargeError(chars);
              return response;
            } catch (error) {
              if (statusOf(error) === 404) files.push({ endpoint, text: null });
              else if (!(error instanceof ConfigChainTooLargeError)) complete = false;
              throw error;
            }
          },
          { endpoint: octokit.request.endpoint },
        );
        const read = async () =>
          keepFalsyScalars(
            await composeConfigGet({ request } as unknown as Octokit, params),
            files,
          );
        // Defaults shape the result (Probot's `context.config(file, defaults)`): not memoized.
        if (params.defaults !== undefined) return read();
        const { owner, repo, path, branch } = params;
        const key = JSON.stringify([talos.installation, owner, repo, path, branch ?? null]);
        const last = memo.get(key);
        if (last && (await sameFiles(octokit, last.files))) {
          // A file that does not parse is not parsed again at each event either.
          if ("error" in last) throw last.error;
          // Callers may change what they get; the kept copy must not change with it.
          return structuredClone(last.result);
        }
        let result: GetResult;
        try {
          result = await read();
        } catch (error) {
          // Every file was read: the error is the parse's, and stays while the files do.
          if (complete) memo.set(key, { files, error });
          throw error;
        }
        if (complete) memo.set(key, { files, result: structuredClone(result) });
        return result;
      },
    },
  };
}

/**
 * The plugin reads a file whose YAML is `false`, `0`, `.nan` or `""` as an empty mapping
 * (`parse(text) || {}`), which gives every default: a maintainer who wrote `false` to switch
 * Talos off had it on, and the owner's `.github` fallback unread. Such a file's value is put
 * back, for the parser to refuse as not a mapping (the most restrictive settings). Only a file
 * read as empty is parsed again, so there is little to parse.
 */
function keepFalsyScalars(result: GetResult, files: FileRead[]): GetResult {
  for (const file of result.files) {
    const config: unknown = file.config;
    if (config === null || typeof config !== "object" || Object.keys(config).length > 0) continue;
    const text = files.find(
      ({ endpoint }) =>
        endpoint.owner === file.owner && endpoint.repo === file.repo && endpoint.path === file.path,
    )?.text;
    if (!text) continue;
    const value: unknown = parse(text, { logLevel: "error" });
    // A scalar (`null` and `~` stay an empty file, which sets nothing).
    if (value !== null && typeof value !== "object") (file as { config: unknown }).config = value;
  }
  return result;
}

/** Whether each file still has the text it had, read in order; stops at the first that changed. */
async function sameFiles(octokit: Octokit, files: FileRead[]): Promise<boolean> {
  for (const file of files) {
    let text: string | null | undefined;
    try {
      text = textOf(await octokit.request(file.endpoint));
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
      text = null;
    }
    if (text !== file.text) return false;
  }
  return true;
}

/**
 * A file's text as the plugin reads it, or undefined for what it does not parse as YAML (a
 * directory's JSON listing, a `.json` file): left to the plugin every time.
 */
function textOf(response: { data: unknown; headers: Record<string, unknown> }) {
  return typeof response.data === "string" &&
    response.headers["content-type"] !== "application/json; charset=utf-8"
    ? response.data
    : undefined;
}

function statusOf(error: unknown): unknown {
  return (error as { status?: unknown } | undefined)?.status;
}
