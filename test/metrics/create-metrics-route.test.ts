import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, parseEnv } from "../../src/config.js";
import { createMetricsRoute } from "../../src/metrics/create-metrics-route.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function serve(token: string): Promise<string> {
  const route = createMetricsRoute(new Registry(), { token });
  const server = createServer((req, res) => {
    void route(req, res).then((served) => {
      if (!served) res.writeHead(404).end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
}

const statusFor = async (url: string, authorization: string) =>
  (await fetch(url, { headers: { authorization } })).status;

describe("/metrics behind TALOS_METRICS_TOKEN", () => {
  it("refuses a token of blanks, naming the variable (twenty spaces served /metrics publicly)", () => {
    for (const token of [" ".repeat(20), `\t${" ".repeat(15)}\n`, `abc${" ".repeat(14)}`])
      expect(() => parseEnv({ TALOS_METRICS_TOKEN: token })).toThrow(
        expect.objectContaining({
          constructor: ConfigError,
          message: expect.stringMatching(/TALOS_METRICS_TOKEN.*not blanks/),
        }),
      );
  });

  it("refuses a token with blanks at its start or end, which no request's header can carry", async () => {
    for (const token of ["metrics-token-0123456789 ", " metrics-token-0123456789"])
      expect(() => parseEnv({ TALOS_METRICS_TOKEN: token })).toThrow(
        expect.objectContaining({
          constructor: ConfigError,
          message: expect.stringMatching(/TALOS_METRICS_TOKEN.*blanks at its start or end/),
        }),
      );
    // Why: sent byte for byte, the header's value reaches the route without them.
    const token = "metrics-token-0123456789";
    const url = await serve(`${token} `);
    expect(await statusFor(url, `Bearer ${token} `)).toBe(401);
  });

  it("takes all that follows the scheme as the token: one with a space, and no words after it", async () => {
    const token = "metrics token 0123456789";
    expect(parseEnv({ TALOS_METRICS_TOKEN: token }).TALOS_METRICS_TOKEN).toBe(token);
    const url = await serve(token);
    expect(await statusFor(url, `Bearer ${token}`)).toBe(200);
    expect(await statusFor(url, `bearer ${token}`)).toBe(200);
    expect(await statusFor(url, "Bearer metrics")).toBe(401);

    const plain = await serve("metrics-token-0123456789");
    expect(await statusFor(plain, "Bearer metrics-token-0123456789")).toBe(200);
    expect(await statusFor(plain, "Bearer metrics-token-0123456789 junk")).toBe(401);
    expect(await statusFor(plain, "Basic metrics-token-0123456789")).toBe(401);
    expect(await statusFor(plain, "Bearer ")).toBe(401);
  });
});
