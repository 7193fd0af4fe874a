/**
 * The prompts the code renders, each with the variables the code fills for it. Start-up checks
 * every prompt directory against this, the shipped one included: a prompt edited in place to take
 * other variables is refused by a running server, but after a restart it was loaded as it was,
 * and every render of it threw. Change a prompt's variables here, in the file, and in the code
 * that fills them, together.
 */
export const PROMPT_VARIABLES: Readonly<Record<string, readonly string[]>> = {
  ask: ["thread", "question", "memories"],
  "pr-summary": ["pull_request", "scope", "previous", "diff", "not_reviewed"],
  review: ["pull_request", "scope", "diff", "not_reviewed", "max_comments"],
  "step-limit": [],
  summarize: ["thread"],
  system: ["repository", "repository_context", "today", "untrusted_tag"],
  triage: ["thread", "labels"],
};
