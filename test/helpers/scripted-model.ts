import type { BaseChatModelCallOptions } from "@langchain/core/language_models/chat_models";
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";

interface ScriptedCallOptions extends BaseChatModelCallOptions {
  tools?: Array<{ name: string }>;
}

export interface ScriptedCall {
  messages: BaseMessage[];
  /** The tools bound for this call, and whether the model was allowed to use them. */
  tools: string[];
  toolChoice: unknown;
}

/**
 * A scripted chat model: it plays back queued answers, tool calls or errors in order, and
 * records every call's messages and bound tools. (LangChain's own fake model is not used: its
 * vitest type augmentation clashes with vitest 4's types.)
 */
export class ScriptedChatModel extends BaseChatModel<ScriptedCallOptions> {
  readonly calls: ScriptedCall[] = [];
  readonly #queue: Array<BaseMessage | Error> = [];

  constructor() {
    super({});
  }

  _llmType(): string {
    return "scripted";
  }

  respond(reply: string | BaseMessage | Error): this {
    this.#queue.push(typeof reply === "string" ? new AIMessage(reply) : reply);
    return this;
  }

  respondWithTools(calls: Array<{ name: string; args: Record<string, unknown> }>): this {
    const toolCalls = calls.map((c, i) => ({
      ...c,
      id: `call_${this.#queue.length}_${i}`,
      type: "tool_call" as const,
    }));
    return this.respond(new AIMessage({ content: "", tool_calls: toolCalls }));
  }

  get callCount(): number {
    return this.calls.length;
  }

  override bindTools(tools: Array<{ name: string }>, kwargs?: Partial<ScriptedCallOptions>) {
    return this.withConfig({ tools, ...kwargs } as Partial<ScriptedCallOptions>);
  }

  async _generate(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
  ): Promise<ChatResult> {
    this.calls.push({
      messages: [...messages],
      tools: (options.tools ?? []).map((t) => t.name),
      toolChoice: options.tool_choice,
    });
    const next = this.#queue.shift();
    if (next === undefined) throw new Error("the scripted model has no more replies");
    if (next instanceof Error) throw next;
    return {
      generations: [{ text: typeof next.content === "string" ? next.content : "", message: next }],
    };
  }
}

export const scriptedModel = () => new ScriptedChatModel();
