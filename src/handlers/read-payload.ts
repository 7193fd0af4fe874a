import { z } from "zod";

/** An issue (or a pull request's issue side) as webhook payloads carry it. */
export const IssuePayload = z.object({
  number: z.number(),
  title: z.string(),
  body: z.string().nullable().optional(),
  state: z.string().optional(),
  user: z.object({ login: z.string() }).nullable().optional(),
  labels: z.array(z.union([z.string(), z.object({ name: z.string().optional() })])).optional(),
  pull_request: z.unknown().optional(),
  html_url: z.string(),
  created_at: z.string().optional(),
  /** Its version: an event's copy older than the one remembered is not written over it. */
  updated_at: z.string().optional(),
  /** How many comments it has. */
  comments: z.number().optional(),
  /** The GitHub App it was opened through on someone's behalf, if any (null or absent if none). */
  performed_via_github_app: z.unknown().optional(),
});

/** The repository as every repository event carries it: ids name its memory and budgets. */
export const RepositoryPayload = z.object({
  id: z.number(),
  full_name: z.string(),
  /** ISO 8601, or Unix seconds in push payloads. */
  created_at: z.union([z.string(), z.number()]).optional(),
});

/** The repository with what a client for it needs: its owner and name. */
export const OwnedRepositoryPayload = RepositoryPayload.extend({
  name: z.string(),
  owner: z.object({ login: z.string() }),
});

export const InstallationPayload = z.object({ id: z.number() });

/**
 * Who sent the event. Every webhook payload names one; a sender that cannot be read cannot be
 * told from a bot, so its event is bad input rather than a person's.
 */
export const SenderPayload = z.object({ login: z.string(), type: z.string().optional() });

/** A webhook payload that lacks what a handler needs. It is bad input, not a bug in Talos. */
export class MalformedPayloadError extends Error {
  override name = "MalformedPayloadError";
}

/** Checks the parts of a payload a handler uses, with an error that names the missing fields. */
export function readPayload<T extends z.ZodType>(schema: T, payload: unknown): z.infer<T> {
  const result = schema.safeParse(payload);
  if (result.success) return result.data;
  const problems = result.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join(".") || "(payload)"}: ${issue.message}`);
  throw new MalformedPayloadError(`malformed webhook payload: ${problems.join("; ")}`);
}
