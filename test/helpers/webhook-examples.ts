import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

interface ExampleIndex {
  name: string;
  examples: Array<Record<string, unknown> & { action?: string }>;
}

const index = JSON.parse(
  readFileSync(
    createRequire(import.meta.url).resolve("@octokit/webhooks-examples/api.github.com/index.json"),
    "utf8",
  ),
) as ExampleIndex[];

/**
 * A real example payload from GitHub's documentation (@octokit/webhooks-examples), copied, with
 * the `installation` most examples lack.
 */
export function webhookExample(
  name: string,
  action?: string,
  installation = 2,
  which: (example: Record<string, unknown>) => boolean = () => true,
): Record<string, any> {
  const examples = index.find((e) => e.name === name)?.examples ?? [];
  const example = examples.find((e) => (action === undefined || e.action === action) && which(e));
  if (!example) throw new Error(`no example payload for ${name}.${action}`);
  return { ...structuredClone(example), installation: { id: installation } };
}
