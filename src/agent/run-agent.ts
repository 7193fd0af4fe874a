import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { AIMessage } from "@langchain/core/messages";
import {
  HumanMessage,
  ToolMessage,
  type BaseMessage,
  type ToolCall,
} from "@langchain/core/messages";
import type { Logger } from "pino";
import type { Metrics } from "../metrics/create-metrics.js";
import type { Tool, ToolContext } from "../tools/define-tool.js";
import type { TokenCounter } from "./count-tokens.js";
import { UTF8_TOKEN_BOUND } from "./count-tokens.js";
import type { TokenAccount } from "./token-budgets.js";
import type { Fence } from "./untrusted-text.js";

export interface AgentLimits {
  /** Model calls per run, the final answer included. */
  maxSteps: number;
  /** Input and output tokens per run, all calls together. */
  maxTokens: number;
  /** The share of the prompt given to the thread. */
  contextTokens: number;
  /**
   * Tool calls run per step (TALOS_AGENT_MAX_TOOL_CALLS); the rest are answered "not run".
   * Absent: no cap.
   */
  maxToolCalls?: number | undefined;
  /**
   * Counts the tokens of what is sent to the model (one per process: its encoder takes 50 MB).
   * Absent: each text is bounded by its UTF-8 length, which no token count exceeds.
   */
  tokenCounter?: TokenCounter | undefined;
}

/** The language model failed (timeout, outage, refusal): the caller tells the user, briefly. */
export class LlmError extends Error {
  override name = "LlmError";
}

export interface RunAgentOptions {
  model: BaseChatModel;
  /** The conversation so far: the system prompt, then the task (and, in chat, earlier turns). */
  messages: BaseMessage[];
  tools: readonly Tool[];
  /** Required when there are tools. */
  toolContext: ToolContext | undefined;
  fence: Fence;
  limits: AgentLimits;
  /** The text sent before the last call: answer now, with no more tools. */
  finalNote: string;
  metrics: Metrics;
  log: Logger;
  /** The job's token budget: checked before the first call, charged after each. */
  account?: TokenAccount | undefined;
  /** What the tokens are spent on, for `talos_llm_tokens_total{kind}` (ask, review, …). */
  kind: string;
}

export interface AgentResult {
  /** The model's last text, raw: clean it before posting. */
  text: string;
  /** False when a limit ended the run before the model was done. */
  finished: boolean;
  steps: number;
  toolCalls: Array<{ name: string; ok: boolean }>;
  usage: { input: number; output: number };
  /** The conversation with this run's messages appended. */
  messages: BaseMessage[];
}

/**
 * The agent loop: call the model, run the tools it asks for, feed the results back, until it
 * answers. Bounded: at the step limit, or once the token budget is spent, the model is called
 * one last time without tools and told to answer with what it has. A tool's failure goes back to
 * the model as text; tool results are fenced as untrusted.
 */
export async function runAgent(options: RunAgentOptions): Promise<AgentResult> {
  const { model, tools, limits, log } = options;
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  const specs = tools.map(({ name, description, schema }) => ({ name, description, schema }));
  const bind = (choice: "auto" | "none") =>
    specs.length > 0 && model.bindTools ? model.bindTools(specs, { tool_choice: choice }) : model;
  const withTools = bind("auto");
  // The last call keeps the tool definitions (servers expect them next to earlier tool calls)
  // but may not use them.
  const withoutTools = bind("none");
  const messages = [...options.messages];
  const usage = { input: 0, output: 0 };
  const toolCalls: AgentResult["toolCalls"] = [];

  // Over budget, no call at all; within it, the run ends (with one last answer) at what is left.
  options.account?.check();
  const maxTokens = Math.min(limits.maxTokens, options.account?.remaining() ?? Infinity);
  for (let step = 1; ; step++) {
    const last = step >= limits.maxSteps || usage.input + usage.output >= maxTokens;
    if (last && step > 1) messages.push(new HumanMessage(options.finalNote));
    const reply = await callModel(last ? withoutTools : withTools, messages, options, usage);
    messages.push(reply);
    const calls = reply.tool_calls ?? [];
    if (calls.length === 0 || last) {
      const text = contentText(reply);
      const finished = calls.length === 0 && text.length > 0;
      log.info({ steps: step, finished, tools: toolCalls.length, usage }, "agent run finished");
      return { text, finished, steps: step, toolCalls, usage, messages };
    }
    const cap = limits.maxToolCalls ?? Infinity;
    if (calls.length > cap)
      log.warn({ asked: calls.length, cap }, "tool calls over the step's cap");
    for (const [index, call] of calls.entries()) {
      // Every call needs an answer (the API rejects a conversation with an unanswered tool call).
      if (index >= cap) {
        messages.push(
          new ToolMessage({
            tool_call_id: call.id ?? `call_${step}_${index}`,
            name: call.name,
            content: `Not run: at most ${cap} tool calls run per step, and this step asked for ${calls.length}. Ask again for any you still need.`,
          }),
        );
        continue;
      }
      const { content, ok } = await runTool(call, byName, options);
      toolCalls.push({ name: call.name, ok });
      messages.push(
        new ToolMessage({
          tool_call_id: call.id ?? `call_${step}_${toolCalls.length}`,
          name: call.name,
          content: options.fence.wrap(`result of the ${call.name} tool`, content),
        }),
      );
    }
  }
}

async function callModel(
  model: Pick<BaseChatModel, "invoke">,
  messages: BaseMessage[],
  options: RunAgentOptions,
  usage: AgentResult["usage"],
): Promise<AIMessage> {
  const { metrics, log } = options;
  const started = performance.now();
  let reply: AIMessage;
  try {
    reply = (await model.invoke(messages)) as AIMessage;
  } catch (error) {
    metrics.llmRequestDuration.observe({ outcome: "error" }, (performance.now() - started) / 1000);
    log.error({ err: error }, "language model call failed");
    throw new LlmError(`the language model call failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  metrics.llmRequestDuration.observe({ outcome: "ok" }, (performance.now() - started) / 1000);
  // Servers that report no usage are charged an estimate, so the budget still holds.
  const counter = options.limits.tokenCounter ?? UTF8_TOKEN_BOUND;
  const input =
    reply.usage_metadata?.input_tokens ??
    messages.reduce((sum, message) => sum + counter.countTokens(contentText(message)), 0);
  const output = reply.usage_metadata?.output_tokens ?? counter.countTokens(contentText(reply));
  usage.input += input;
  usage.output += output;
  options.account?.charge(input + output);
  const installation = options.account?.installation ?? "none";
  metrics.llmTokens.inc({ installation, kind: options.kind, direction: "input" }, input);
  metrics.llmTokens.inc({ installation, kind: options.kind, direction: "output" }, output);
  return reply;
}

async function runTool(
  call: ToolCall,
  byName: Map<string, Tool>,
  { toolContext, log }: RunAgentOptions,
): Promise<{ content: string; ok: boolean }> {
  const tool = byName.get(call.name);
  if (!tool) {
    return {
      ok: false,
      content: `Error: there is no tool named "${call.name}". The tools are: ${[...byName.keys()].join(", ")}.`,
    };
  }
  const args = tool.schema.safeParse(call.args ?? {});
  if (!args.success) {
    const problems = args.error.issues.map(
      (i) => `${i.path.join(".") || "arguments"}: ${i.message}`,
    );
    return {
      ok: false,
      content: `Error: invalid arguments for ${call.name}: ${problems.join("; ")}`,
    };
  }
  if (!toolContext)
    return { ok: false, content: `Error: ${call.name} cannot run here: no repository was chosen.` };
  const started = performance.now();
  try {
    const content = await tool.execute(args.data, toolContext);
    log.debug({ tool: call.name, ms: Math.round(performance.now() - started) }, "tool finished");
    return { ok: true, content };
  } catch (error) {
    log.warn({ tool: call.name, err: error }, "tool failed");
    return { ok: false, content: `Error: ${call.name} failed: ${(error as Error).message}` };
  }
}

/** The text of a message, whether its content is a string or a list of parts. */
export function contentText(message: BaseMessage): string {
  const { content } = message;
  if (typeof content === "string") return content;
  return content
    .map((part) =>
      typeof part === "string" ? part : part.type === "text" ? String(part.text ?? "") : "",
    )
    .join("");
}
