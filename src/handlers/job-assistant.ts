import type { Assistant } from "../agent/assistant.js";
import type { JobSpending, TokenBudgets } from "../agent/token-budgets.js";

/**
 * The assistant of one job: commands and automations alike draw on the installation's and the
 * repository's daily budgets, and on the job's own cap, which the job's earlier runs (`job`: a
 * failed attempt, a crashed one) may have drawn on already. Undefined when no model is configured.
 */
export async function jobAssistant(
  assistant: Assistant | undefined,
  budgets: TokenBudgets,
  scope: {
    installation: number;
    repository: number;
    repositoryTokens: number | undefined;
    job: JobSpending;
  },
): Promise<Assistant | undefined> {
  return assistant && { ...assistant, account: await budgets.account(scope, scope.job) };
}
