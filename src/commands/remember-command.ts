import { noteId } from "../memory/memory-inputs.js";
import type { Command } from "./command-registry.js";
import { MEMORY_OFF_REPLY } from "./memory-replies.js";

export const rememberCommand: Command = {
  name: "remember",
  usage: "/talos remember <note>",
  summary: "Store a note that `ask` takes into account in this repository.",
  isEnabled: (config) => config.memory.enabled,
  async run({ args, memory, comment, github, issue, clock }) {
    if (!args)
      return "Write the note after the command, e.g. `/talos remember releases happen on Tuesdays`.";
    const store = await memory();
    if (!store) return MEMORY_OFF_REPLY;
    const id = noteId(comment.id);
    await store.add({
      id,
      kind: "note",
      text: args,
      repo: `${github.repo.owner}/${github.repo.repo}`,
      number: issue.number,
      author: comment.author,
      url: comment.url,
      createdAt: new Date(clock.now()).toISOString(),
    });
    return `Remembered as \`${id}\`. \`/talos forget ${id}\` removes it.`;
  },
};
