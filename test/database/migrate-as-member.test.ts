import { afterAll, describe, expect, it } from "vitest";
import { APP_ROLE, type Database } from "../../src/database/database.js";
import { PostgresBudgetCounts } from "../../src/database/postgres-budget-counts.js";
import { freshSchema, requirePostgres, TEST_DATABASE_URL } from "../helpers/shared-services.js";
import { asSuperuser, openDatabase, uniqueName } from "./database-helpers.js";

const available = await requirePostgres("the review's PostgreSQL tests");

describe.runIf(available)("PostgreSQL migrations as a user that may not create roles", () => {
  const schema = freshSchema("talos_review");
  const owner = uniqueName("review_owner");
  const opened: Database[] = [];
  afterAll(async () => {
    for (const database of opened) await database.close();
    await asSuperuser(async (client) => {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      const database = new URL(TEST_DATABASE_URL).pathname.slice(1);
      await client.query(`REVOKE ALL ON DATABASE "${database}" FROM ${owner}`).catch(() => {});
      await client.query(`DROP ROLE IF EXISTS ${owner}`);
    });
  });

  it("starts when an administrator made the app's role and granted it beforehand", async () => {
    // What a managed PostgreSQL's administrator sets up for a user without CREATEROLE: the role
    // exists, the user may SET ROLE to it, and owns what it creates in the database.
    await asSuperuser(async (client) => {
      await client.query(`DO $$ BEGIN
          CREATE ROLE ${APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$`);
      await client.query(`CREATE ROLE ${owner} LOGIN NOSUPERUSER NOCREATEROLE`);
      const database = new URL(TEST_DATABASE_URL).pathname.slice(1);
      await client.query(`GRANT CREATE ON DATABASE "${database}" TO ${owner}`);
      await client.query(`GRANT ${APP_ROLE} TO ${owner}`);
    });
    const url = new URL(TEST_DATABASE_URL);
    url.username = owner;
    const database = await openDatabase(schema, url.toString());
    opened.push(database);
    const budgets = new PostgresBudgetCounts(database);
    await budgets.charge("2026-12-03", "1", "1/10", 100, "charge-1");
    expect(await budgets.spent("2026-12-03", "1", "1/10")).toEqual({
      installation: 100,
      repository: 100,
    });
    // And at the next start, as at every start.
    opened.push(await openDatabase(schema, url.toString()));
  });
});
