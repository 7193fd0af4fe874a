// Dependency bots that run as GitHub Apps end in `[bot]`; these run as user accounts too
// (self-hosted Renovate, the old Dependabot), with `type: "User"`.
const DEPENDENCY_BOTS = new Set(["dependabot", "dependabot-preview", "renovate", "renovate-bot"]);

/**
 * Whether a login is a bot's: an App's account (`[bot]`) or a dependency bot's user account.
 * Threads such an author opened get no automatic work, and such a sender triggers nothing.
 */
export function isBotAuthor(login: string | null | undefined): boolean {
  const author = login?.toLowerCase() ?? "";
  return author.endsWith("[bot]") || DEPENDENCY_BOTS.has(author);
}
