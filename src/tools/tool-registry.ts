import type { Tool } from "./define-tool.js";

/**
 * The tools the model may call, by name. Registering the same tool again is a no-op (modules
 * that share a tool can each register it); a different tool under a taken name is a bug, and
 * throws.
 */
export class ToolRegistry {
  readonly #tools = new Map<string, Tool>();

  register(...tools: Tool[]): this {
    for (const tool of tools) {
      const existing = this.#tools.get(tool.name);
      if (existing === tool) continue;
      if (existing) throw new Error(`a different tool is already registered as "${tool.name}"`);
      this.#tools.set(tool.name, tool);
    }
    return this;
  }

  get(name: string): Tool | undefined {
    return this.#tools.get(name);
  }

  list(): Tool[] {
    return [...this.#tools.values()];
  }

  get size(): number {
    return this.#tools.size;
  }
}
