import type { Logger } from "pino";
import type { z } from "zod";
import type { RepoClient } from "../github/create-repo-client.js";

/**
 * What a tool can reach: one repository, fixed by the event. The installation, owner and
 * repository are never tool parameters, so nothing the model writes can point a tool elsewhere.
 */
export interface ToolContext {
  github: RepoClient;
  log: Logger;
}

export interface Tool<S extends z.ZodObject = z.ZodObject> {
  /** snake_case: the model reads it. */
  name: string;
  description: string;
  schema: S;
  /** Returns text for the model. A thrown error is reported to the model as text too. */
  execute(args: z.infer<S>, context: ToolContext): Promise<string>;
}

const TOOL_NAME = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;

export function defineTool<S extends z.ZodObject>(tool: Tool<S>): Tool<S> {
  if (!TOOL_NAME.test(tool.name)) throw new Error(`tool name "${tool.name}" is not snake_case`);
  if (!tool.description.trim()) throw new Error(`tool "${tool.name}" has no description`);
  return Object.freeze({ ...tool });
}
