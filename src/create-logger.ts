import { Transform, type Writable } from "node:stream";
import { getTransformStream } from "@probot/pino";
import { pino, type Logger, type LevelWithSilent } from "pino";

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
 * Credential shapes that are scrubbed even when they are not the configured values: PEM private
 * keys, GitHub tokens, OpenAI-style keys, JWTs and Authorization header values. Log lines are
 * JSON at this point, so a newline inside a key appears as the two characters `\n`.
 */
const SECRET_PATTERNS: Array<[RegExp, string]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, REDACTED],
  [/\b(gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{22,})\b/g, REDACTED],
  [/\bsk-[A-Za-z0-9_-]{16,}/g, REDACTED],
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, REDACTED],
  [/\b(bearer|token|basic)\s+(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{12,}/gi, `$1 ${REDACTED}`],
];

/** Returns a function that removes the given secrets, and anything shaped like one, from text. */
export function createSecretScrubber(secrets: Array<string | undefined>): (text: string) => string {
  const literals = new Set<string>();
  for (const secret of secrets) {
    if (!secret || secret.length < 6) continue;
    for (const variant of [secret, JSON.stringify(secret).slice(1, -1)]) literals.add(variant);
    // A key may be logged a line at a time; every long line of it counts as a secret too.
    for (const line of secret.split(/\r?\n|\\n/)) if (line.length >= 24) literals.add(line.trim());
  }
  // Longest first, so a whole key is replaced before its lines are looked for.
  const ordered = [...literals].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const literal of ordered) out = out.split(literal).join(REDACTED);
    for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
    return out;
  };
}

/**
 * The one pino logger for the process, passed to Probot. Every line goes through the scrubber
 * before it is formatted (pretty or JSON) and written.
 */
export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const scrub = createSecretScrubber(options.secrets);
  const scrubbing = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, scrub(chunk.toString()));
    },
  });
  const formatting = await getTransformStream({ logFormat: options.format });
  scrubbing.pipe(formatting).pipe(options.destination ?? process.stdout);
  return pino(
    { level: options.level, name: "probot", redact: { paths: REDACT_PATHS, censor: REDACTED } },
    scrubbing,
  );
}
