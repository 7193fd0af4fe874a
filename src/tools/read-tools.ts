import { getFileTool } from "./get-file.js";
import { getIssueTool } from "./get-issue.js";
import { listCommentsTool } from "./list-comments.js";
import { listLabelsTool } from "./list-labels.js";
import { searchIssuesTool } from "./search-issues.js";

/** The tools every agent flow may use: they only read, and only the event's repository. */
export const READ_TOOLS = [
  getIssueTool,
  listCommentsTool,
  searchIssuesTool,
  getFileTool,
  listLabelsTool,
];
