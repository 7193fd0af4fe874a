import { githubScope, mockInstallationToken, mockRepoConfig } from "./github-mocks.js";
import { scriptedModel } from "./scripted-model.js";
import { createTestApp } from "./test-app.js";

/**
 * The app with a scripted model, triage (labels applied, a comment) and similar issues on, its
 * installation token and `.github/talos.yml` read: what a new issue's automatic work meets.
 */
export async function startTriageApp() {
  const model = scriptedModel();
  const app = await createTestApp({ model });
  const scope = githubScope();
  mockInstallationToken(scope);
  mockRepoConfig(scope, {
    yaml:
      "triage:\n  enabled: true\n  apply_labels: true\n  comment: true\n" +
      "similar:\n  enabled: true\n",
  });
  return { model, app, scope };
}
