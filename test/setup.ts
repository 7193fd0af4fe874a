import nock from "nock";
import { afterAll, afterEach, beforeAll } from "vitest";
import { closeTestMarkdownWorkers } from "./helpers/test-markdown-workers.js";

// Tests never reach the network. Loopback is allowed for the tests that start real servers.
beforeAll(() => {
  nock.disableNetConnect();
  nock.enableNetConnect(/^(127\.0\.0\.1|localhost)(:\d+)?$/);
});

afterEach(() => {
  nock.cleanAll();
});

afterAll(() => closeTestMarkdownWorkers());
