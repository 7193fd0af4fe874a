import { describe, expect, it } from "vitest";
import { isRateLimited, rateLimitWaitMs } from "../../src/github/octokit.js";

const NOW = Date.UTC(2026, 11, 6, 12);

/** An error as Octokit throws it: a status, GitHub's message and the response's headers. */
function refused(status: number, message: string, headers: Record<string, unknown> = {}) {
  return Object.assign(new Error(message), { status, response: { headers } });
}

describe("rateLimitWaitMs: the one reading of a rate limit", () => {
  it.each([
    ["a 403 for a permission", refused(403, "Resource not accessible by integration"), undefined],
    ["a 404", refused(404, "Not Found", { "retry-after": "5" }), undefined],
    ["a 5xx", refused(502, "Bad Gateway"), undefined],
    ["an error without a status", new Error("socket hang up"), undefined],
    ["a 429 that names no wait", refused(429, "Too Many Requests"), 60_000],
    [
      "a 403 with retry-after in seconds",
      refused(403, "Forbidden", { "retry-after": "30" }),
      30_000,
    ],
    ["a 429 with retry-after 0", refused(429, "Too Many Requests", { "retry-after": "0" }), 0],
    [
      "a 403 with retry-after as an HTTP date",
      refused(403, "You have been rate limited", {
        "retry-after": new Date(NOW + 90_000).toUTCString(),
      }),
      90_000,
    ],
    [
      "a spent primary limit: until its reset, and a second",
      refused(403, "API rate limit exceeded for installation ID 1.", {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(NOW / 1000 + 120),
      }),
      121_000,
    ],
    [
      "a spent primary limit, its headers as numbers",
      refused(403, "Forbidden", { "x-ratelimit-remaining": 0, "x-ratelimit-reset": NOW / 1000 }),
      1_000,
    ],
    [
      "a 403 naming a primary limit, without headers",
      refused(403, "API rate limit exceeded"),
      60_000,
    ],
    [
      "a secondary limit whose headers show the primary spent: a minute, not the primary's reset",
      refused(403, "You have exceeded a secondary rate limit.", {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(NOW / 1000 + 3000),
      }),
      60_000,
    ],
    [
      "a retry-after that is neither seconds nor a date",
      refused(429, "Too Many Requests", { "retry-after": "soon" }),
      60_000,
    ],
    [
      "a spent primary limit with a retry-after of 0: both are waited for",
      refused(403, "API rate limit exceeded for installation ID 1.", {
        "retry-after": "0",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(NOW / 1000 + 3_600),
      }),
      3_601_000,
    ],
    [
      "a retry-after sent twice, joined: its first value",
      refused(429, "Too Many Requests", { "retry-after": "120, 120" }),
      120_000,
    ],
    [
      "a retry-after Date.parse would take for a date in 2001: no date",
      refused(429, "Too Many Requests", { "retry-after": "1 2" }),
      60_000,
    ],
    [
      "older GitHub Enterprise's 403 'abuse detection' without a retry-after: a minute",
      refused(403, "You have triggered an abuse detection mechanism. Please wait a few minutes."),
      60_000,
    ],
    [
      "older GitHub Enterprise's 'abuse detection' whose headers show the primary spent: a minute, as a secondary limit",
      refused(403, "You have triggered an abuse detection mechanism. Please wait a few minutes.", {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(NOW / 1000 + 3000),
      }),
      60_000,
    ],
    [
      "a 422 saying the content 'was submitted too quickly' (the content-creation limit): a minute",
      refused(
        422,
        'Validation Failed: {"resource":"IssueComment","message":"was submitted too quickly"}',
      ),
      60_000,
    ],
    [
      "a 422 whose answer lists 'submitted too quickly' among its errors, not in its message",
      Object.assign(new Error("Validation Failed"), {
        status: 422,
        response: {
          headers: {},
          data: { errors: [{ code: "custom" }, { message: "was submitted too quickly" }] },
        },
      }),
      60_000,
    ],
    [
      "a 422 for anything else",
      refused(422, "Validation Failed", { "retry-after": "5" }),
      undefined,
    ],
    [
      "a 403 whose message names a rate limit only past its first 500 characters",
      refused(403, `${"a".repeat(500)} rate limit`),
      undefined,
    ],
  ])("%s", (_, error, expected) => {
    expect(rateLimitWaitMs(error, NOW)).toBe(expected);
    expect(isRateLimited(error)).toBe(expected !== undefined);
  });
});
