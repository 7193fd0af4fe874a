import type { Octokit as CoreOctokit } from "@octokit/core";
import type { Logger } from "pino";
import type { ProbotOctokit } from "probot";
import { createSecretScrubber } from "../create-logger.js";

/** The installation-authenticated client Probot hands to each event. */
export type Octokit = InstanceType<typeof ProbotOctokit>;

export interface RepoRef {
  owner: string;
  repo: string;
}

/** The HTTP status of a failed GitHub request, if the error carries one. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null | undefined)?.status;
  return typeof status === "number" ? status : undefined;
}

// GitHub's advice for a rate limit that names no wait (a secondary one, mostly): at least a minute.
// https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#handle-rate-limit-errors-appropriately
const UNNAMED_LIMIT_WAIT_MS = 60_000;
// A secondary limit's message; "abuse detection" is older GitHub Enterprise's name for one.
const SECONDARY = /secondary rate limit|abuse detection/i;
// GitHub's content-creation limit: a 422 whose errors say a comment or review "was submitted
// too quickly", with no `retry-after`.
const TOO_QUICKLY = /submitted too quickly/i;

/**
 * How long GitHub asks to wait when it refused a request for a rate limit, or undefined when it
 * refused it for anything else (a 403 for a permission). A rate limit is a 429, a 403 with a
 * `retry-after`, a spent primary limit or a message naming a rate limit (or "abuse detection"),
 * or a 422 saying the content "was submitted too quickly" (a secondary limit by another name).
 * The wait is its `retry-after` (seconds or a date), else the spent limit's reset and a second,
 * else a minute.
 * The reply, the review, the backfill, the catch-up, the redelivery and the job runner all read
 * a rate limit here.
 */
export function rateLimitWaitMs(error: unknown, now: number): number | undefined {
  const status = statusOf(error);
  // Sliced first: a message can quote what a user wrote.
  const message = error instanceof Error ? error.message.slice(0, 500) : "";
  if (status === 422)
    return submittedTooQuickly(error, message)
      ? (retryAfterHeaderMs(error, now) ?? UNNAMED_LIMIT_WAIT_MS)
      : undefined;
  if (status !== 403 && status !== 429) return undefined;
  const headers = headersOf(error);
  const spent = String(headers["x-ratelimit-remaining"]) === "0";
  const asked = String(headers["retry-after"] ?? "") !== "";
  const named = /rate limit/i.test(message) || SECONDARY.test(message);
  if (status === 403 && !asked && !spent && !named) return undefined;
  const retryAfter = retryAfterHeaderMs(error, now);
  const reset = Number(headers["x-ratelimit-reset"]);
  // A secondary limit's headers describe the primary limit, whose reset is not its end.
  const resetWait =
    spent && Number.isFinite(reset) && !SECONDARY.test(message)
      ? Math.max(0, reset * 1000 - now) + 1_000
      : undefined;
  // Both said: both are waited for (a retry-after of 0 on a spent limit is no leave to go on).
  if (retryAfter !== undefined || resetWait !== undefined)
    return Math.max(retryAfter ?? 0, resetWait ?? 0);
  return UNNAMED_LIMIT_WAIT_MS;
}

/**
 * The wait an answer's `retry-after` names, in seconds or as a date (both are HTTP's), whatever
 * its status; undefined without one, or with one that is neither.
 */
export function retryAfterHeaderMs(error: unknown, now: number): number | undefined {
  return retryAfterMsOf(headersOf(error)["retry-after"], now);
}

/** A `retry-after` value's wait (see retryAfterHeaderMs); undefined without one, or another. */
export function retryAfterMsOf(value: unknown, now: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = String(value).slice(0, 100).trim();
  // A header sent twice comes joined ("120, 120"): its first value.
  const first = text.split(",", 1)[0]!.trim();
  const seconds = Number(first);
  if (first && Number.isFinite(seconds)) return Math.max(0, seconds) * 1000;
  // Only HTTP's date form: Date.parse takes "5, 10" or "-1" for dates in 2001.
  const date = HTTP_DATE.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

// "Sun, 06 Dec 2026 12:04:00 GMT" (RFC 9110's IMF-fixdate), at the start of the header.
const HTTP_DATE = /^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT/;

/**
 * A 422's message, or one of the first errors its answer lists, says "submitted too quickly":
 * Octokit puts the errors in the message, but only as far as the 500 characters read of it.
 */
function submittedTooQuickly(error: unknown, message: string): boolean {
  if (TOO_QUICKLY.test(message)) return true;
  const errors = (error as { response?: { data?: { errors?: unknown } } }).response?.data?.errors;
  return (
    Array.isArray(errors) &&
    errors.slice(0, 10).some((entry: unknown) => {
      const text = typeof entry === "string" ? entry : (entry as { message?: unknown })?.message;
      return typeof text === "string" && TOO_QUICKLY.test(text.slice(0, 200));
    })
  );
}

function headersOf(error: unknown): Record<string, unknown> {
  return (error as { response?: { headers?: Record<string, unknown> } }).response?.headers ?? {};
}

/** GitHub refused the request for a rate limit, not for what it asked. */
export const isRateLimited = (error: unknown): boolean => rateLimitWaitMs(error, 0) !== undefined;

/**
 * An error's message, led by its HTTP status when GitHub answered and the message lacks it, with
 * anything shaped like a credential scrubbed: it is kept in files (`backfill.json`) and printed
 * (`talos memory stats --json`), and a proxy may quote the token it refused in its answer.
 */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const status = statusOf(error);
  return scrubCredentialShapes(
    (status !== undefined && !message.includes(String(status)) ? `${status} ` : "") + message,
  );
}

// The shapes alone: the configured secrets are scrubbed again where a command prints them.
const scrubCredentialShapes = createSecretScrubber([]);

/**
 * Probot gives every client its pino logger, but Octokit's types describe a message-first
 * console; this is the logger as it really is, fields first.
 */
export function getClientLog(octokit: Pick<CoreOctokit, "log">): Logger {
  return octokit.log as unknown as Logger;
}
