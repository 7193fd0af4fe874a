import { reviewPullRequest } from "../pulls/review-pull-request.js";
import { shortSha } from "../pulls/render-changes.js";
import type { Command } from "./command-registry.js";
import { NO_MODEL_REPLY } from "./llm-replies.js";

export const reviewCommand: Command = {
  name: "review",
  usage: "/talos review [--full]",
  summary:
    "Review this pull request: one review with a verdict and a few inline comments, then each push's new changes. `--full` reviews everything again.",
  isEnabled: (config) => config.review.enabled,
  async run(context) {
    const {
      args,
      assistant,
      github,
      pulls,
      issue,
      comment,
      config,
      botLogin,
      markdown,
      limits,
      clock,
      log,
    } = context;
    if (!issue.isPullRequest) return "`review` works on pull requests only.";
    if (!assistant) return NO_MODEL_REPLY;
    const full = /(^|\s)--full(\s|$)/.test(args.slice(0, 200));
    const outcome = await reviewPullRequest({
      assistant,
      github,
      pulls,
      number: issue.number,
      settings: config.config.review,
      commentId: comment.id,
      full,
      botLogin,
      markdown,
      limits,
      clock,
      log,
    });
    assistant.metrics.pullRequestRuns.inc({ kind: "review", outcome: outcome.status });
    switch (outcome.status) {
      // The review is the answer: no comment besides it.
      case "posted":
      case "already-posted":
        return { body: "", silent: true };
      case "current":
        return `Nothing has changed since the last review, of \`${shortSha(outcome.head)}\`. Run \`/talos review --full\` to review the whole pull request again.`;
      case "stale":
        return `The pull request's head moved from \`${shortSha(outcome.analysed)}\` to \`${shortSha(outcome.head)}\` while I was reviewing it, so that review was not posted. Run \`/talos review\` again to review the new head.`;
      case "closed":
        return "This pull request is closed, so I did not review it.";
      case "not-requested":
      case "nothing-to-review":
      case "draft":
      case "over-budget":
        throw new Error(`a command's review cannot end ${outcome.status}`);
    }
  },
};
