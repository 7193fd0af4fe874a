import { HumanMessage } from "@langchain/core/messages";
import type { Logger } from "pino";
import {
  COMMENTS_PER_PAGE,
  type CommentInfo,
  type RepoClient,
} from "../github/create-repo-client.js";
import type { Tool } from "../tools/define-tool.js";
import { ToolRegistry } from "../tools/tool-registry.js";
import { prepareRun, type Assistant } from "./assistant.js";
import { UTF8_TOKEN_BOUND } from "./count-tokens.js";
import { runAgent } from "./run-agent.js";
import { loadThread, renderThread, type KnownThread } from "./thread.js";
import type { Fence } from "./untrusted-text.js";

export interface ThreadTask {
  assistant: Assistant;
  github: RepoClient;
  /** The issue or pull request the task is about; its thread is the run's history. */
  number: number;
  /** What the webhook payload already says about the thread. */
  known?: KnownThread;
  /** The prompt file (under prompts/) that states the task; it takes `thread` and `values`. */
  prompt: string;
  /** Further prompt variables; untrusted text in them must go through the fence. */
  values?: (fence: Fence) => Record<string, string>;
  /** Tools for this task only (a write tool, say), next to the read tools. */
  extraTools?: Tool[];
  log: Logger;
}

export interface AgentAnswer {
  /** The model's Markdown, as it wrote it: posting makes it safe (`toSafeMarkdown`). */
  text: string;
  /** False when a limit cut the run short: the answer may be partial. */
  finished: boolean;
  /** The thread's comments as the run read them, when it read them all (a long thread: not). */
  comments: CommentInfo[] | undefined;
}

/**
 * One agent run about a thread (`ask`, `summarize`, triage): the thread is fetched for this event
 * and rendered within the context budget, the task's prompt is filled, and the agent runs with
 * the read tools bound to this repository. Every untrusted text is bounded in tokens: the thread
 * by the context budget, each other one (a question, a memory, a tool's result) by half of it,
 * as an issue's body is.
 */
export async function runThreadTask(task: ThreadTask): Promise<AgentAnswer> {
  const { assistant, github, log } = task;
  const { contextTokens, tokenCounter = UTF8_TOKEN_BOUND } = assistant.limits;
  const setup = await prepareRun(assistant, github, log);
  const fence = setup.fence.bounded(Math.floor(contextTokens / 2), tokenCounter);
  const thread = await loadThread(github, task.number, task.known ?? {}, contextTokens);
  const prompt = await assistant.prompts.render(task.prompt, {
    thread: renderThread(thread, setup.fence, contextTokens, tokenCounter),
    ...task.values?.(fence),
  });
  const result = await runAgent({
    model: assistant.model,
    messages: [setup.system, new HumanMessage(prompt)],
    // Joined as the registry joins tools: each once (the API refuses two of one name), and a
    // different tool under a taken name is a bug.
    tools: new ToolRegistry()
      .register(...assistant.tools.list(), ...(task.extraTools ?? []))
      .list(),
    toolContext: setup.toolContext,
    fence,
    limits: assistant.limits,
    finalNote: setup.finalNote,
    metrics: assistant.metrics,
    log,
    account: assistant.account,
    kind: task.prompt,
  });
  return {
    text: result.text,
    finished: result.finished,
    // Only a complete list, read in one request, may stand for the thread where a reply is
    // looked for: its first page not full, it had no other. Read over several pages, a comment
    // deleted between two reads shifts the later pages and one comment is read on none, Talos's
    // earlier reply perhaps, which a second reply would then duplicate.
    comments:
      thread.omitted === 0 && thread.comments.length < COMMENTS_PER_PAGE
        ? thread.comments
        : undefined,
  };
}
