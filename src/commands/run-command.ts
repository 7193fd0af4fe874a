import { LlmError } from "../agent/run-agent.js";
import { BudgetExceededError } from "../agent/token-budgets.js";
import { causesOf } from "../causes-of.js";
import { isRateLimited } from "../github/octokit.js";
import { MarkdownWorkersClosedError } from "../markdown/markdown-workers.js";
import type { CommandContext, CommandReply } from "./command-registry.js";
import type { ParsedCommand } from "./parse-command.js";

export type CommandOutcome = Exclude<CommandReply, string>;

/**
 * Runs a parsed command. It always returns a reply: an unknown or switched-off command, or a
 * command that fails, gets a short explanation instead.
 */
export async function runCommand(
  parsed: ParsedCommand,
  context: Omit<CommandContext, "args">,
): Promise<CommandOutcome> {
  const { registry, config, log } = context;
  const command = registry.get(parsed.name);
  let reply: CommandReply;
  if (!command) {
    reply = `I don't know the command \`${sanitizeName(parsed.name)}\`. Try \`/talos help\` for the list.`;
  } else if (!registry.isEnabled(command.name, config)) {
    reply = `\`${command.name}\` is switched off in this repository's \`.github/talos.yml\`. Try \`/talos help\` for the list.`;
  } else {
    try {
      reply = await command.run({ ...context, args: parsed.args });
    } catch (error) {
      if (runsAgain(error)) throw error;
      if (error instanceof BudgetExceededError) {
        log.warn({ command: command.name, budget: error.scope }, "command refused: budget spent");
        const { issue, comment } = context;
        const account = context.assistant?.account;
        // A retried job whose earlier run spent its cap lands here too, and that run may have
        // posted its answer before a later step failed: the notice never replaces it.
        const notice = { body: budgetNotice(command.name, error), keepExisting: true };
        // The job's cap is this command's own, met only by a maintainer's command: it is told,
        // as any command gets its reply. It had used up the thread's notice of the day, and the
        // thread's next command refused (capped, or for a spent day) got no reply at all.
        if (error.scope === "job") return notice;
        // A spent day: one notice per thread and day; after it, those commands get no reply at
        // all. Taken for this comment, as it is posted: a retry after a failed post (a GitHub
        // 5xx, a crash) must still post it.
        return {
          ...notice,
          claim: async () =>
            (await account?.takeNotice(String(issue.number), String(comment.id))) ?? false,
        };
      }
      log.error({ err: error, command: command.name }, "command failed");
      // Like the notice, never in place of an answer an earlier run of the job posted.
      reply = {
        body:
          error instanceof LlmError
            ? llmFailureReply(command.name, error)
            : `Sorry, \`${command.name}\` failed (${errorName(error)}). The maintainers of this app can find the details in its log.`,
        keepExisting: true,
      };
    }
  }
  const outcome = typeof reply === "string" ? { body: reply } : reply;
  // The `config` reply already lists the problems; every other reply points at them.
  if (config.errors.length > 0 && command?.name !== "config") {
    outcome.body += `\n\n> [!WARNING]\n> \`.github/talos.yml\` has ${config.errors.length} problem(s); those settings fell back to their most restrictive values. Run \`/talos config\` for details.`;
  }
  return outcome;
}

/**
 * What a command is told when the model's server failed it. A refusal that no wait fixes (a key
 * refused, a model the server does not serve, a prompt over its context) says what to check:
 * "try again later" had sent maintainers waiting on a setting. The server's own message is not
 * quoted: a 401's names part of the key.
 */
function llmFailureReply(name: string, error: LlmError): string {
  const refused = causesOf(error).find((cause) => typeof statusOf(cause) === "number");
  const status = refused && statusOf(refused);
  const whoRuns = "Whoever runs this app should check";
  if (status === 401 || status === 403)
    return `Sorry, the language model's server refused Talos's credentials, so \`${name}\` was not run. ${whoRuns} \`OPENAI_API_KEY\` (and that the key may use \`TALOS_MODEL\`).`;
  if (status === 404)
    return `Sorry, the language model's server does not serve the model Talos asks for, so \`${name}\` was not run. ${whoRuns} \`TALOS_MODEL\` and \`OPENAI_BASE_URL\`.`;
  if (status === 400 && refused && isContextOverflow(refused))
    return `Sorry, this thread is longer than the language model's context, so \`${name}\` was not run. ${whoRuns} \`TALOS_AGENT_CONTEXT_TOKENS\`, which must fit the model's context.`;
  if (status === 400 || status === 422)
    return `Sorry, the language model's server refused the request for \`${name}\` (HTTP ${status}). The maintainers of this app can find the details in its log.`;
  return `Sorry, the language model did not answer \`${name}\` (it may be down or slow). Please try again later.`;
}

function statusOf(error: Error): unknown {
  return (error as { status?: unknown }).status;
}

/** OpenAI's code for it, or the wording OpenAI-compatible servers (vLLM, llama.cpp) use. */
function isContextOverflow(error: Error): boolean {
  if ((error as { code?: unknown }).code === "context_length_exceeded") return true;
  return /context (length|window|size)|maximum context/i.test(error.message.slice(0, 500));
}

/**
 * A failure the job runs again for, which a reply would misname: GitHub refusing for a rate limit
 * (a review "submitted too quickly" once its retries were spent: the runner waits the limit out,
 * uncounted) or Talos stopping (its Markdown workers closed). Replied to, `review` had said it
 * failed, and the job ended.
 */
function runsAgain(error: unknown): boolean {
  if (error instanceof LlmError) return false; // the model's 429 is its own, waited out already
  return causesOf(error).some(
    (cause) =>
      cause instanceof MarkdownWorkersClosedError ||
      ((cause as { response?: unknown }).response !== undefined && isRateLimited(cause)),
  );
}

function budgetNotice(name: string, error: BudgetExceededError): string {
  // The job's cap is this command's alone: a new command has its own, today (the notice had said
  // to wait for midnight UTC).
  if (error.scope === "job") {
    return `A single command may spend only so many tokens, and this one reached that limit, so \`${name}\` was not run. A new command (a narrower question, say) starts afresh.`;
  }
  const whose = error.scope === "installation" ? "installation" : "repository";
  return `This ${whose} has used today's language-model budget, so \`${name}\` was not run. Commands that use the model work again after midnight UTC; \`help\`, \`config\` and \`similar\` still work. (This notice is posted once a day per thread.)`;
}

/** Command names come from untrusted comments; keep them short and free of Markdown. */
function sanitizeName(name: string): string {
  return name.replace(/[^\w-]/g, "").slice(0, 40);
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : "unknown error";
}
