import type { z } from "zod";

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
