import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { UsageError } from "./usage-error.js";

export interface RecordedResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * One recorded answer. Its status and headers are ones a response can have (200–599; names and
 * values `Headers` takes): `new Response` throws on any other, and the replay then failed as a
 * GitHub error rather than as bad input.
 */
const RecordedSchema = z.object({
  status: z.number().int().min(200).max(599).default(200),
  body: z.unknown().transform((body) => body ?? null),
  headers: z
    .record(z.string(), z.string())
    .refine(canCarry, "a header name or value no response can carry")
    .optional(),
});

function canCarry(headers: Record<string, string>): boolean {
  try {
    new Headers(headers);
    return true;
  } catch {
    return false;
  }
}

/** Statuses whose responses have no body. */
const NO_BODY = new Set([204, 205, 304]);

export interface PlannedWrite {
  method: string;
  path: string;
  body: unknown;
}

/**
 * Recorded GitHub API data from `fixtures/api/*.json`: objects whose keys are `METHOD /path`,
 * where a path may hold `{placeholders}` (`GET /repos/{owner}/{repo}/labels`), and whose values
 * are `{ status?, body, headers? }`. An exact path wins over a pattern.
 */
export async function loadRecordedGitHub(
  directory: string,
): Promise<Map<string, RecordedResponse>> {
  const recorded = new Map<string, RecordedResponse>();
  let files: string[];
  try {
    files = (await readdir(directory)).filter((f) => f.endsWith(".json")).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return recorded;
    if (code === "ENOTDIR") throw new UsageError(`${directory} is not a directory`);
    throw error;
  }
  for (const file of files) {
    const path = join(directory, file);
    let entries: unknown;
    try {
      entries = JSON.parse(await readFile(path, "utf8"));
    } catch (error) {
      throw new UsageError(`${path} is not valid JSON: ${(error as Error).message}`);
    }
    if (!isObject(entries) || !Object.values(entries).every(isObject)) {
      throw new UsageError(
        `${path} does not hold recorded responses (an object of "METHOD /path": { status, body, headers })`,
      );
    }
    for (const [key, value] of Object.entries(entries)) {
      const parsed = RecordedSchema.safeParse(value);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new UsageError(
          `${path}: "${key}": ${issue.path.join(".") || "entry"}: ${issue.message} (a status is 200 to 599, headers are strings a response can carry)`,
        );
      }
      const { headers, ...response } = parsed.data;
      recorded.set(key, { ...response, ...(headers ? { headers } : {}) });
    }
  }
  return recorded;
}

/**
 * A `fetch` that answers reads from recorded data (404 when nothing matches) and records writes
 * as a plan instead of sending them. Nothing leaves the process.
 */
export function createReplayFetch(
  recorded: Map<string, RecordedResponse>,
  onWrite: (write: PlannedWrite) => void,
  /** Where the recorded data was read from, named in a 404: `--fixtures`' own, say. */
  source = "fixtures/api",
): typeof fetch {
  const patterns = [...recorded.keys()]
    .filter((key) => key.includes("{"))
    .sort((a, b) => placeholders(a) - placeholders(b))
    .map((key) => ({ key, regex: toRegex(key) }));
  let nextId = 1_000_000;
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = (init?.method ?? "GET").toUpperCase();
    const path = url.pathname.replace(/^\/api\/v3/, "");
    if (method === "GET" || method === "HEAD") {
      const key = `${method} ${path}`;
      const match =
        recorded.get(key) ??
        recorded.get(key.replace("HEAD ", "GET ")) ??
        recorded.get(patterns.find((p) => p.regex.test(key))?.key ?? "");
      if (!match) return json(404, { message: `Not Found (no recorded data in ${source})` });
      return typeof match.body === "string" && !NO_BODY.has(match.status)
        ? new Response(match.body, {
            status: match.status,
            headers: { "content-type": "text/plain; charset=utf-8", ...match.headers },
          })
        : json(match.status, match.body, match.headers);
    }
    const body =
      typeof init?.body === "string" && init.body ? (JSON.parse(init.body) as unknown) : null;
    onWrite({ method, path, body });
    // Answer like GitHub would, closely enough for the caller to carry on.
    return json(method === "POST" ? 201 : 200, { id: nextId++, ...(isObject(body) ? body : {}) });
  };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(NO_BODY.has(status) ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

function placeholders(key: string): number {
  return key.split("{").length - 1;
}

function toRegex(key: string): RegExp {
  const escaped = key.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+");
  return new RegExp(`^${escaped}$`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
