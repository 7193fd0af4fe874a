import { FORGETTABLE } from "../memory/memory-inputs.js";
import type { Command } from "./command-registry.js";
import { MEMORY_OFF_REPLY } from "./memory-replies.js";

export const forgetCommand: Command = {
  name: "forget",
  usage: "/talos forget <id>",
  summary: "Remove a remembered note, answer or summary (`note-…`, `answer-…`, `summary-…`).",
  isEnabled: (config) => config.memory.enabled,
  async run({ args, memory }) {
    const id = args.split(/\s+/)[0] ?? "";
    if (!FORGETTABLE.test(id)) {
      return "Name the note or answer to forget, e.g. `/talos forget note-123`. Issues and pull requests are remembered from GitHub and cannot be forgotten.";
    }
    const store = await memory();
    if (!store) return MEMORY_OFF_REPLY;
    if (await store.remove(id)) return `Forgot \`${id}\`.`;
    // An earlier run of this job may have removed it and replied: that reply stands.
    return { body: `There is no \`${id}\` in this repository's memory.`, keepExisting: true };
  },
};
