import { parentPort } from "node:worker_threads";
import { createCommandParser, parseCommand } from "../commands/parse-command.js";
import { checkSafeMarkdown } from "./check-safe-markdown.js";
import { createMarkdownParser } from "./create-markdown-parser.js";
import type { WorkerReply, WorkerRequest } from "./markdown-workers.js";
import { toSafeMarkdown } from "./to-safe-markdown.js";

/**
 * The worker thread behind `MarkdownWorkers`: Markdown parses of untrusted text run here, where a
 * slow one holds up no webhook and can be cut off at its deadline.
 */
const port = parentPort;
if (!port) throw new Error("markdown-worker.js runs as a worker thread");
const parser = createMarkdownParser();
const commandParser = createCommandParser();
port.on("message", (request: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    if (request.op === "safe") {
      const markdown = toSafeMarkdown(request.text, request.options, parser);
      reply = {
        id: request.id,
        op: "safe",
        markdown,
        problems: checkSafeMarkdown(markdown, request.options, parser),
      };
    } else {
      reply = {
        id: request.id,
        op: "command",
        command: parseCommand(request.body, request.options, commandParser),
      };
    }
  } catch (error) {
    reply = { id: request.id, op: "error", message: (error as Error).message };
  }
  port.postMessage(reply);
});
port.postMessage({ id: -1, op: "ready" } satisfies WorkerReply);
