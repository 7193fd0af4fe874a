import type nock from "nock";
import { Probot, ProbotOctokit } from "probot";
import { API } from "./github-mocks.js";
import { captureLogs, TEST_APP_ID, TEST_PRIVATE_KEY } from "./test-app.js";

/** GitHub's listing of the app's webhook delivery attempts, and its redeliveries, as nock mocks. */
export const LIST = "/app/hook/deliveries";
export const APP_JWT = /^bearer eyJ/i;

/** GitHub's `hook-delivery-item`: one attempt at delivering event `guid`. */
export function attempt(
  id: number,
  guid: string,
  deliveredAt: string,
  { statusCode = 502, redelivery = false }: { statusCode?: number; redelivery?: boolean } = {},
) {
  const ok = statusCode >= 200 && statusCode < 300;
  return {
    id,
    guid,
    delivered_at: deliveredAt,
    redelivery,
    duration: 0.42,
    status: ok ? "OK" : statusCode === 502 ? "failed to connect" : "Invalid HTTP Response: 500",
    status_code: statusCode,
    event: "issues",
    action: "opened",
    installation_id: 2,
    repository_id: 101,
    throttled_at: null,
  };
}

/** The app's client as the server gets it: `probot.auth()` with no installation id (a JWT). */
export async function appClient() {
  const probot = new Probot({
    appId: TEST_APP_ID,
    privateKey: TEST_PRIVATE_KEY,
    log: (await captureLogs("warn")).log,
    Octokit: ProbotOctokit.defaults((o: Record<string, any>) => ({
      ...o,
      retry: { enabled: false },
      throttle: { ...o.throttle, enabled: false },
    })),
  });
  return probot.auth();
}

/** A page of the listing, newest first; `next` is the cursor of the page after it, if any. */
export function mockPage(
  scope: nock.Scope,
  items: unknown[],
  { cursor, next }: { cursor?: string; next?: string } = {},
) {
  const headers: Record<string, string> = next
    ? { link: `<${API}${LIST}?per_page=100&cursor=${next}>; rel="next"` }
    : {};
  return scope
    .get(LIST)
    .query(cursor ? { per_page: "100", cursor } : { per_page: "100" })
    .matchHeader("authorization", APP_JWT)
    .reply(200, items, headers);
}

/** Redelivery POSTs, answered `status`; their paths are recorded in `posted`, in order. */
export function mockRedeliveries(scope: nock.Scope, ids: number[], posted: string[], status = 202) {
  for (const id of ids) {
    scope
      .post(`${LIST}/${id}/attempts`)
      .matchHeader("authorization", APP_JWT)
      .reply((uri) => {
        posted.push(uri);
        return status === 202
          ? [202, {}]
          : [
              status,
              { message: "Validation Failed", documentation_url: "https://docs.github.com" },
            ];
      });
  }
}
