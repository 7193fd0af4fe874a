import { z } from "zod";
import { clipResult } from "./clip-result.js";
import { defineTool } from "./define-tool.js";

export const getFileTool = defineTool({
  name: "get_file",
  description:
    "Read a file of this repository, at the default branch unless a ref (branch, tag or commit) is given.",
  schema: z.object({
    path: z
      .string()
      .min(1)
      .max(300)
      .refine(
        (p) => !p.split("/").includes("..") && !p.startsWith("/"),
        "a path inside the repository",
      )
      .describe("path from the repository root, e.g. src/index.ts"),
    ref: z.string().max(200).optional(),
  }),
  async execute({ path, ref }, { github }) {
    const file = await github.getFile(path, ref);
    // A directory's note lists its entries: up to 1,000, of names up to 255 bytes.
    if (file.text === undefined) return clipResult(`${path} is ${file.note ?? "not readable"}.`);
    return clipResult(file.text);
  },
});
