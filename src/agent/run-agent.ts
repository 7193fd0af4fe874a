import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import {
  AIMessage,
  HumanMessage,
  ToolMessage,
  type BaseMessage,
  type InvalidToolCall,
  type ToolCall,
} from "@langchain/core/messages";
import { convertToOpenAITool } from "@langchain/core/utils/function_calling";
import type { Logger } from "pino";
import { causesOf } from "../causes-of.js";
import type { Metrics } from "../metrics/create-metrics.js";
import { clipResult } from "../tools/clip-result.js";
import type { Tool, ToolContext } from "../tools/define-tool.js";
import type { TokenCounter } from "./count-tokens.js";
import { UTF8_TOKEN_BOUND } from "./count-tokens.js";
import { showsNothing } from "../markdown/to-safe-markdown.js";
import { stripReasoning } from "./strip-reasoning.js";
import { BudgetExceededError, type TokenAccount } from "./token-budgets.js";
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
   * The longest answer one call may write (TALOS_LLM_MAX_OUTPUT_TOKENS): kept free of the budget
   * before each call. Absent: nothing is kept for it.
   */
  maxOutputTokens?: number | undefined;
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
  /**
   * The model's last text, trimmed and less the reasoning some servers leave before it, else raw:
   * clean it before posting. Empty when the model answered with nothing.
   */
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
 * answers. Bounded: at the step limit, or when what is left of the token budget (the run's cap,
 * and the job's and the day's, re-read before each call) could not pay for two more calls, the
 * model is called one last time without tools and told to answer with what it has. Each call is
 * estimated before it is made (the conversation resends everything so far) and made only when
 * it fits, the first excepted; tool results are cut to leave room for that last answer. A tool's
 * failure goes back to the model as text; tool results are fenced as untrusted.
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

  const counter = limits.tokenCounter ?? UTF8_TOKEN_BOUND;
  const reserve = limits.maxOutputTokens ?? 0;
  // What the last call cost as the server counted it, and where its reply sits: the next call
  // is sent all that again, plus what came after.
  let sent: { tokens: number; next: number } | undefined;
  let said = "";
  // The tool definitions go with every call, the last too: a server's count of a call includes
  // them, but the first call's estimate must add them (the read tools alone are about 500).
  // None are sent to a model that cannot bind them (see `bind`), and none are charged.
  const definitions =
    specs.length > 0 && model.bindTools ? JSON.stringify(specs.map(convertToOpenAITool)) : "";
  const definitionTokens = new Map<TokenCounter, number>();
  const toolTokens = (count: TokenCounter) =>
    definitionTokens.get(count) ??
    definitionTokens.set(count, count.countTokens(definitions)).get(count)!;
  const inputTokens = (count: TokenCounter = counter) =>
    (sent ? sent.tokens : toolTokens(count)) +
    messages
      .slice(sent?.next ?? 0)
      .reduce((sum, message) => sum + count.countTokens(sentText(message)), 0);
  // UTF-8 bytes bound a count from above: a conversation whose bytes fit is not tokenized (a
  // long prompt takes milliseconds of CPU to count, on every call).
  const inputFits = (limit: number) =>
    inputTokens(UTF8_TOKEN_BOUND) <= limit || inputTokens() <= limit;
  // Re-read before each call: other jobs of the installation spend the same day meanwhile.
  const room = () =>
    Math.min(
      limits.maxTokens - usage.input - usage.output,
      options.account?.remaining() ?? Infinity,
    );

  // Over budget, no call at all: every call, the first included, must fit in what is left (its
  // prompt and the answer's room), and is the last (no tools) when a second one as large would
  // not. A first call let through on anything left overshot the day by a whole prompt.
  options.account?.check();
  if (!inputFits(room() - reserve)) {
    const needed = inputTokens() + reserve;
    const refused = options.account?.refuse(needed);
    if (refused && refused.scope !== "job") throw refused;
    // No account (`talos chat`), or a job's budget: the job's own cap is what is short.
    throw new BudgetExceededError(
      "job",
      `the prompt needs ${needed} tokens with the answer's room, over the ${limits.maxTokens} a run may spend (TALOS_AGENT_MAX_TOKENS)`,
    );
  }
  for (let step = 1; ; step++) {
    const left = room();
    const last = step >= limits.maxSteps || !inputFits(left / 2 - reserve);
    if (last && step > 1) messages.push(new HumanMessage(options.finalNote));
    if (step > 1 && !inputFits(left - reserve)) {
      const needed = inputTokens() + reserve;
      // A call not made is a refusal, counted as the first call's would be.
      const scope = options.account?.refuse(needed).scope ?? "job";
      log.warn(
        { step, needed, left, usage, scope },
        "agent run stopped: no budget left for another call",
      );
      return { text: said, finished: false, steps: step - 1, toolCalls, usage, messages };
    }
    // What this call may spend, held until it is charged: other jobs of the installation check
    // the same day meanwhile.
    const release = options.account?.hold(inputTokens() + reserve);
    const called = await callModel(
      last ? withoutTools : withTools,
      messages,
      options,
      usage,
      toolTokens(counter),
    ).finally(release);
    const { input, output } = called;
    const { reply, broken } = normalizeToolCalls(called.reply, step);
    messages.push(reply);
    sent = { tokens: input + output, next: messages.length };
    said = stripReasoning(contentText(reply)).trim();
    if (showsNothing(said)) said = "";
    const calls = reply.tool_calls ?? [];
    if (calls.length === 0 || last) {
      // Told to answer with what it has (the final note), the model is cut short by a limit, as
      // it is when the server stopped it at the output limit. An empty answer is the model's
      // own: no limit cut it.
      const finished = calls.length === 0 && !(last && step > 1) && !cutAtOutputLimit(reply);
      log.info(
        { steps: step, finished, empty: said === "", tools: toolCalls.length, usage },
        "agent run finished",
      );
      return { text: said, finished, steps: step, toolCalls, usage, messages };
    }
    const cap = limits.maxToolCalls ?? Infinity;
    if (calls.length > cap)
      log.warn({ asked: calls.length, cap }, "tool calls over the step's cap");
    const ran: Array<{ id: string; name: string; content: string }> = [];
    const notRun: ToolMessage[] = [];
    for (const [index, call] of calls.entries()) {
      // Every call needs an answer (the API rejects a conversation with an unanswered tool call).
      const id = call.id ?? `call_${step}_${index}`;
      if (index >= cap) {
        notRun.push(
          new ToolMessage({
            tool_call_id: id,
            name: call.name,
            content: `Not run: at most ${cap} tool calls run per step, and this step asked for ${calls.length}. Ask again for any you still need.`,
          }),
        );
        continue;
      }
      const problem = broken.get(id);
      const { content, ok } =
        problem === undefined
          ? await runTool(call, byName, options)
          : {
              ok: false,
              content: `Error: the arguments of ${call.name} are not valid JSON (${problem}). Call it again with a JSON object.`,
            };
      toolCalls.push({ name: call.name, ok });
      ran.push({ id, name: call.name, content });
    }
    // The results share what the budget leaves once the next call (the last, at worst) and its
    // answer are paid for: a result that does not fit is cut, so that the run can still answer.
    const fixed = [...notRun, new HumanMessage(options.finalNote)].reduce(
      (sum, message) => sum + counter.countTokens(sentText(message)),
      inputTokens() + reserve,
    );
    const share = Math.floor((room() - fixed) / Math.max(1, ran.length));
    for (const { id, name, content } of ran) {
      const source = `result of the ${name} tool`;
      messages.push(
        new ToolMessage({
          tool_call_id: id,
          name,
          content: fenceResult(options.fence, source, content, share, counter),
        }),
      );
    }
    messages.push(...notRun);
  }
}

/**
 * The reply as it goes back to the server, every tool call with an id and JSON arguments, and the
 * ids of calls whose arguments were not JSON (LangChain sets those apart, in
 * `invalid_tool_calls`), with the parse error. Those are sent back as calls with no arguments and
 * answered with the error, so the model can call again: left out, a reply holding only such calls
 * ended the run with no answer. Empty arguments are no arguments, `{}`: vLLM, LM Studio and some
 * gateways send `""` for a tool without parameters, and told it was not JSON the model could only
 * call it the same way again. A call without an id (some compatible servers send none) is given
 * one: LangChain refuses to send a tool call without one, which failed the next call.
 */
function normalizeToolCalls(
  reply: AIMessage,
  step: number,
): { reply: AIMessage; broken: Map<string, string> } {
  const isEmpty = (call: InvalidToolCall) => (call.args ?? "").trim() === "";
  const received = reply.invalid_tool_calls ?? [];
  const valid = [
    ...(reply.tool_calls ?? []),
    ...received.filter(isEmpty).map((call) => ({
      name: call.name ?? "unknown",
      args: {},
      ...(call.id ? { id: call.id } : {}),
      type: "tool_call" as const,
    })),
  ];
  const invalid = received.filter((call) => !isEmpty(call));
  const broken = new Map<string, string>();
  // A tool step goes back to the server with the conversation: without the reasoning a server
  // with no reasoning parser leaves in its content (tokens paid again at every later step, and
  // chat templates expect earlier turns without it). A final answer is cleaned where it is read.
  const content =
    typeof reply.content === "string" && valid.length + invalid.length > 0
      ? stripReasoning(reply.content).trim()
      : reply.content;
  if (received.length === 0 && valid.every((call) => call.id) && content === reply.content)
    return { reply, broken };
  const calls = [
    ...valid.map((call, index) => ({ ...call, id: call.id || `call_${step}_${index}` })),
    ...invalid.map((call, index) => {
      const id = call.id || `call_${step}_${valid.length + index}`;
      broken.set(id, (call.error ?? "unreadable arguments").slice(0, 200));
      return { name: call.name ?? "unknown", args: {}, id, type: "tool_call" as const };
    }),
  ];
  // The raw calls would otherwise be sent again instead of these.
  const kwargs = { ...reply.additional_kwargs };
  delete kwargs.tool_calls;
  return {
    reply: new AIMessage({
      content,
      tool_calls: calls,
      invalid_tool_calls: [],
      additional_kwargs: kwargs,
      response_metadata: reply.response_metadata,
      ...(reply.usage_metadata ? { usage_metadata: reply.usage_metadata } : {}),
      ...(reply.id ? { id: reply.id } : {}),
    }),
    broken,
  };
}

/**
 * Whether the server stopped the reply at the output limit (`max_tokens`): OpenAI-compatible
 * servers say `finish_reason: "length"`, Anthropic-style ones `stop_reason: "max_tokens"`.
 */
function cutAtOutputLimit(reply: AIMessage): boolean {
  const metadata = reply.response_metadata as { finish_reason?: unknown; stop_reason?: unknown };
  return metadata?.finish_reason === "length" || metadata?.stop_reason === "max_tokens";
}

// Less room than this is not worth a cut result's head.
const MIN_RESULT_TOKENS = 100;

/**
 * The fenced result, cut to `share` tokens when it is longer, or a note when too little is left.
 * Fenced as it is: each tool gives its result as a reader sees it (a file as its lines, each
 * comment cleaned on its own). Cleaned again as a whole, one comment's visible `<script>` hid the
 * older comments after it, and a string literal `'<!--'` the rest of a file.
 */
function fenceResult(
  fence: Fence,
  source: string,
  content: string,
  share: number,
  counter: TokenCounter,
): string {
  const whole = fence.wrapCode(source, content);
  // Its UTF-8 bytes bound its tokens: most results fit without being tokenized.
  if (UTF8_TOKEN_BOUND.countTokens(whole) <= share || counter.countTokens(whole, share) <= share)
    return whole;
  const room = share - counter.countTokens(fence.wrapCode(source, ""));
  if (room >= MIN_RESULT_TOKENS) return fence.bounded(room, counter).wrapCode(source, content);
  return "Not shown: the run's token budget has no room left for this result. Answer with what you have.";
}

/**
 * One model call, charged to the budgets. `definitionTokens`: the tool definitions sent with it
 * (every call of a run with tools, the last too), part of what an estimate charges: left out, a
 * server that reports no usage, or a call that timed out, was charged some 500 tokens a call
 * short (found by a review).
 */
async function callModel(
  model: Pick<BaseChatModel, "invoke">,
  messages: BaseMessage[],
  options: RunAgentOptions,
  usage: AgentResult["usage"],
  definitionTokens: number,
): Promise<{ reply: AIMessage; input: number; output: number }> {
  const { metrics, log } = options;
  const counter = options.limits.tokenCounter ?? UTF8_TOKEN_BOUND;
  const estimate = () =>
    messages.reduce(
      (sum, message) => sum + counter.countTokens(sentText(message)),
      definitionTokens,
    );
  const started = performance.now();
  const installation = options.account?.installation ?? "none";
  // What the budgets are charged is what the metric counts, a timed-out call's estimate included.
  const count = (direction: "input" | "output", tokens: number) =>
    metrics.llmTokens.inc({ installation, kind: options.kind, direction }, tokens);
  let reply: AIMessage;
  try {
    reply = (await model.invoke(messages)) as AIMessage;
  } catch (error) {
    metrics.llmRequestDuration.observe({ outcome: "error" }, (performance.now() - started) / 1000);
    // A call that timed out was read by the server, which may have run it (and billed it), and
    // one whose answer was cut short surely ran: its prompt is charged once, so that calls that
    // keep failing so still draw on the budget (a lower bound: LangChain's retries before it
    // gave up are not seen here; a cut answer had been charged nothing, found by a review). A
    // refused call is not, nor one that never reached the server.
    const charged = isTimeout(error) || wasCutShort(error) ? estimate() : 0;
    if (charged > 0) {
      options.account?.charge(charged);
      count("input", charged);
    }
    log.error({ err: error, charged }, "language model call failed");
    throw new LlmError(`the language model call failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  metrics.llmRequestDuration.observe({ outcome: "ok" }, (performance.now() - started) / 1000);
  // Servers that report no usage are charged an estimate, so the budget still holds. So are those
  // reporting a figure that is no count (LangChain passes the server's on unchecked): a negative
  // one gave the day's budget back, and NaN switched it off.
  const reported = reply.usage_metadata;
  const input = tokenCount(reported?.input_tokens) ?? estimate();
  const output = tokenCount(reported?.output_tokens) ?? counter.countTokens(sentText(reply));
  const bad = [reported?.input_tokens, reported?.output_tokens].filter(
    (n) => n !== undefined && tokenCount(n) === undefined,
  );
  if (bad.length > 0)
    log.warn(
      { usage: reported },
      "the language model server reported usage that is no token count: an estimate is charged",
    );
  usage.input += input;
  usage.output += output;
  options.account?.charge(input + output);
  count("input", input);
  count("output", output);
  return { reply, input, output };
}

/** A reported figure as whole tokens, when it is a count (finite, not negative). */
function tokenCount(reported: unknown): number | undefined {
  return typeof reported === "number" && Number.isFinite(reported) && reported >= 0
    ? Math.ceil(reported)
    : undefined;
}

/**
 * LangChain's OpenAI client names a timed-out request so (the SDK's APIConnectionTimeoutError,
 * rewrapped); other clients may throw the SDK's own.
 */
function isTimeout(error: unknown): boolean {
  const name = error instanceof Error ? error.name : "";
  return name === "TimeoutError" || name === "APIConnectionTimeoutError";
}

/**
 * An answer the server began to send and that ended early (fetch's `terminated`, the body cut
 * by a proxy or a dropped connection) or could not be read whole (JSON cut short).
 */
function wasCutShort(error: unknown): boolean {
  return causesOf(error).some(
    (cause) =>
      cause.name === "SyntaxError" ||
      (cause.name === "TypeError" && cause.message === "terminated"),
  );
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
    return {
      ok: false,
      content: clipResult(`Error: ${call.name} failed: ${(error as Error).message}`),
    };
  }
}

/**
 * What a message sends the model, as text to count: its content and, for an answer, its tool
 * calls (a reply of calls alone has no content, and its arguments go back with every call).
 */
export function sentText(message: BaseMessage): string {
  const calls = AIMessage.isInstance(message) ? (message.tool_calls ?? []) : [];
  return calls.reduce(
    (text, call) => `${text}\n${call.name} ${JSON.stringify(call.args)}`,
    contentText(message),
  );
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
