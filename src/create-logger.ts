import { Transform, type Writable } from "node:stream";
import { getTransformStream } from "@probot/pino";
import { pino, stdSerializers, type Logger, type LevelWithSilent } from "pino";
import { sliceWhole } from "./slice-whole.js";

export interface LoggerOptions {
  level: LevelWithSilent;
  format: "json" | "pretty";
  /** Configured secret values (private key, webhook secret, API keys) to remove from every line. */
  secrets: Array<string | undefined>;
  destination?: Writable;
}

const REDACTED = "[REDACTED]";

// Field names that hold credentials wherever they appear. Scrubbing below is the backstop for
// secrets that end up inside messages, error texts or unexpected fields.
const REDACT_PATHS = [
  "privateKey",
  "secret",
  "token",
  "apiKey",
  "password",
  "authorization",
  "*.privateKey",
  "*.secret",
  "*.token",
  "*.apiKey",
  "*.password",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "req.headers.authorization",
  "req.headers.cookie",
  "err.request.headers.authorization",
];

/**
 * Credential shapes that are scrubbed even when they are not the configured values: GitHub
 * tokens, OpenAI-style keys and Authorization header values here; PEM private keys and JWTs by
 * the scanners below. Each pattern has one unbounded quantifier, so it runs in linear time over
 * any text: this also cleans text users wrote before the model reads it.
 */
const SECRET_PATTERNS: Array<[RegExp, (match: string, ...groups: string[]) => string]> = [
  [/\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{22,})\b/g, () => REDACTED],
  [/\bsk-[A-Za-z0-9_-]{16,}/g, () => REDACTED],
  // Log lines are JSON at this point: a value follows its scheme after a space.
  [
    /\b(bearer|token|basic)([ \t]{1,16})([A-Za-z0-9._~+/=-]{12,})/gi,
    (match, scheme, space, value) => (/\d/.test(value) ? `${scheme}${space}${REDACTED}` : match),
  ],
];

/** Returns a function that removes the given secrets, and anything shaped like one, from text. */
export function createSecretScrubber(secrets: Array<string | undefined>): (text: string) => string {
  const literals = new Set<string>();
  for (const secret of secrets) {
    if (!secret || secret.length < 6) continue;
    for (const variant of writtenForms(secret)) literals.add(variant);
    // A key may be logged a line at a time; every long line of it counts as a secret too.
    for (const line of secret.split(/\r?\n|\\n/)) if (line.length >= 24) literals.add(line.trim());
  }
  // Longest first, so a whole key is replaced before its lines are looked for.
  const ordered = [...literals].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const literal of ordered) out = out.split(literal).join(REDACTED);
    out = redactUrlPasswords(redactJwts(redactPemKeys(out)));
    for (const [pattern, replace] of SECRET_PATTERNS) out = out.replace(pattern, replace);
    return out;
  };
}

/**
 * How a secret may stand in a log line: as written, JSON-escaped, and as a URL a client sent
 * carries it (Probot's request logger writes the URL as it came): percent-encoded, and
 * form-encoded with a space as `+`, as a scraper's `?token=` is (a token holding a space had been
 * logged so). Encoded, it holds nothing JSON escapes.
 */
function writtenForms(secret: string): string[] {
  return [
    secret,
    JSON.stringify(secret).slice(1, -1),
    // A lone surrogate as U+FFFD, as URLSearchParams writes it: encodeURIComponent throws on one.
    encodeURIComponent(secret.replace(/\p{Surrogate}/gu, "\uFFFD")),
    new URLSearchParams([["", secret]]).toString().slice(1),
  ];
}

/**
 * PEM private keys, from `-----BEGIN … PRIVATE KEY-----` to their END line (or, cut short, to the
 * end of the text). Log lines are JSON, so a newline inside a key is the two characters `\n`.
 */
function redactPemKeys(text: string): string {
  let out = "";
  let at = 0;
  for (let begin = text.indexOf("-----BEGIN ", at); begin !== -1;) {
    const labelEnd = text.indexOf("-----", begin + 11);
    if (labelEnd === -1) break;
    if (!/^[A-Z ]*PRIVATE KEY$/.test(text.slice(begin + 11, labelEnd))) {
      begin = text.indexOf("-----BEGIN ", labelEnd);
      continue;
    }
    const endLine = text.indexOf("-----END ", labelEnd + 5);
    const keyEnd = endLine === -1 ? -1 : text.indexOf("KEY-----", endLine);
    out += text.slice(at, begin) + REDACTED;
    at = keyEnd === -1 ? text.length : keyEnd + 8;
    begin = text.indexOf("-----BEGIN ", at);
  }
  return out + text.slice(at);
}

// What ends a URL's authority (`user:password@host:port`), and so a password in it.
const AUTHORITY_ENDS = new Set([
  "/",
  "?",
  "#",
  "\\",
  '"',
  "'",
  "<",
  ">",
  "`",
  " ",
  "\t",
  "\r",
  "\n",
]);

/**
 * The password in any URL's user info, `scheme://user:password@host`, whoever's it is: a service
 * URL in an error (a password too short to be scrubbed as a literal, `talos` in the compose
 * file), or one pasted in an issue. One pass: each `://` is scanned to the end of its authority
 * at most, and the next `://` holds a `/`, which ends it.
 */
function redactUrlPasswords(text: string): string {
  let out = "";
  let at = 0;
  for (let scheme = text.indexOf("://"); scheme !== -1; scheme = text.indexOf("://", scheme + 3)) {
    const start = scheme + 3;
    let colon = -1;
    let end = start;
    while (end < text.length && text[end] !== "@" && !AUTHORITY_ENDS.has(text[end]!)) {
      if (colon === -1 && text[end] === ":") colon = end;
      end++;
    }
    if (text[end] !== "@" || colon === -1 || colon + 1 === end) continue;
    out += text.slice(at, colon + 1) + REDACTED;
    at = end;
  }
  return out + text.slice(at);
}

/**
 * JSON web tokens: `eyJ…`, at a word boundary, then two more dot-separated base64url parts, each
 * at least 8 characters. Scanned part by part, so a long run such as `eyJ-eyJ-eyJ-…` costs one
 * pass rather than one per `eyJ`.
 */
function redactJwts(text: string): string {
  // Each run holding `eyJ` is found from that `eyJ`, not by matching every run: a global replace
  // over a line of 17 million short runs (a 25 MB body of `a,a,…`) ended V8 with a fatal error.
  let out = "";
  let at = 0;
  for (let hit = text.indexOf("eyJ"); hit !== -1; hit = text.indexOf("eyJ", at)) {
    let start = hit;
    while (start > at && isJwtChar(text.charCodeAt(start - 1))) start--;
    let end = hit + 3;
    while (end < text.length && isJwtChar(text.charCodeAt(end))) end++;
    out += text.slice(at, start) + redactJwtRun(text.slice(start, end));
    at = end;
  }
  return out + text.slice(at);
}

/** `[A-Za-z0-9_.-]`: what a run of a JWT and what stands around it in one word is made of. */
function isJwtChar(code: number): boolean {
  return (
    (code >= 97 && code <= 122) ||
    (code >= 65 && code <= 90) ||
    (code >= 48 && code <= 57) ||
    code === 95 ||
    code === 46 ||
    code === 45
  );
}

function redactJwtRun(run: string): string {
  const parts = run.split(".");
  const kept: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const start = jwtStart(part);
    if (start !== -1 && (parts[i + 1]?.length ?? 0) >= 8 && (parts[i + 2]?.length ?? 0) >= 8) {
      kept.push(part.slice(0, start) + REDACTED);
      i += 2;
    } else {
      kept.push(part);
    }
  }
  return kept.join(".");
}

/** Where a JWT starts in one dot-separated part: `eyJ` after a non-word character, 8+ after. */
function jwtStart(part: string): number {
  for (let at = part.indexOf("eyJ"); at !== -1; at = part.indexOf("eyJ", at + 1)) {
    const before = part[at - 1];
    const boundary = before === undefined || before === "-";
    if (boundary && part.length - at - 3 >= 8) return at;
  }
  return -1;
}

/**
 * The one pino logger for the process, passed to Probot. Every line goes through the scrubber
 * before it is formatted (pretty or JSON) and written.
 */
export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const scrub = createSecretScrubber(options.secrets);
  // Longer than any secret as a log line holds it (JSON-escaped or URL-encoded: at most nine
  // times as long, a character of three UTF-8 bytes as `%E2%82%AC`), and than a token shape's
  // match: a cut within this of a slice's end may hold part of one.
  const margin = 9 * Math.max(0, ...options.secrets.map((s) => s?.length ?? 0)) + 256;
  const scrubbing = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(
        null,
        chunk.length <= MAX_LOG_LINE_BYTES
          ? scrub(chunk.toString())
          : cutLogLine(chunk, scrub, margin),
      );
    },
  });
  const formatting = await getTransformStream({ logFormat: options.format });
  scrubbing.pipe(formatting).pipe(options.destination ?? process.stdout);
  return pino(
    {
      level: options.level,
      name: "probot",
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: { err: serializeError },
    },
    scrubbing,
  );
}

/**
 * pino's error serializer, without the webhook event @octokit/webhooks attaches to its errors:
 * a delivery refused for its signature carried its whole body (anyone's, up to 25 MB), logged
 * three times over (Probot's error handler, the middleware's AggregateError and the error in it).
 * Its id and name are kept.
 */
function serializeError(error: unknown): unknown {
  const serialized: unknown = stdSerializers.err(error as Error);
  dropEvents(serialized, 0);
  return serialized;
}

function dropEvents(serialized: unknown, depth: number): void {
  if (typeof serialized !== "object" || serialized === null || depth > 8) return;
  const error = serialized as Record<string, unknown>;
  const event = error.event;
  if (typeof event === "object" && event !== null) {
    const { id, name } = event as { id?: unknown; name?: unknown };
    error.event = {
      ...(typeof id === "string" ? { id } : {}),
      ...(typeof name === "string" ? { name } : {}),
    };
  }
  dropEvents(error.cause, depth + 1);
  if (Array.isArray(error.aggregateErrors))
    for (const inner of error.aggregateErrors) dropEvents(inner, depth + 1);
}

/** Longer log lines are cut: no line Talos writes needs more, and scrubbing one takes time. */
export const MAX_LOG_LINE_BYTES = 256 * 1024;
const HEAD_CHARS = 4096;
const TAIL_CHARS = 1024;

/**
 * A line over MAX_LOG_LINE_BYTES as one saying so, with its level, time, head and tail (where
 * pino puts the message): text anyone wrote may reach a log line (an error quoting a body), and
 * the scrubber's passes over megabytes held the event loop for seconds. Each end is scrubbed
 * with `margin` more of the line, and that margin dropped after: a secret cut by the slice is
 * not matched whole, and part of it had been written. Scrubbed before it is quoted again, while
 * its secrets are escaped as in any line (quoted twice, one with a `"` was not found).
 */
function cutLogLine(chunk: Buffer, scrub: (text: string) => string, margin: number): string {
  // Decoded bytes: a character split at a slice's end is within the margin dropped.
  const head = scrub(chunk.subarray(0, HEAD_CHARS * 4 + margin).toString());
  const tail = scrub(chunk.subarray(-(TAIL_CHARS * 4 + margin)).toString());
  // pino's lines start with their level and time.
  const level = /^\{"level":(\d{1,3}),"time":(\d{1,16})/.exec(head);
  return (
    JSON.stringify({
      level: level ? Number(level[1]) : 50,
      time: level ? Number(level[2]) : Date.now(),
      name: "probot",
      msg: `log line of ${chunk.length} bytes cut to its head and tail (over ${MAX_LOG_LINE_BYTES})`,
      head: sliceWhole(head.slice(0, Math.max(0, head.length - margin)), HEAD_CHARS),
      tail: tail.slice(Math.max(margin, tail.length - TAIL_CHARS)),
    }) + "\n"
  );
}
