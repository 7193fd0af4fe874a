import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CJK_CHARACTER, Database, migrations } from "../../src/database/database.js";
import type { PostgresMemory } from "../../src/database/postgres-memory.js";
import { isCjkLetter } from "../../src/memory/english-words.js";
import { openPgliteDatabase } from "../helpers/pglite-database.js";
import { freshSchema, requirePostgres, TEST_DATABASE_URL } from "../helpers/shared-services.js";
import { issueMemory } from "../helpers/test-memory.js";
import { openMemory } from "./database-helpers.js";

const available = await requirePostgres("the PostgreSQL CJK keyword tests");
const log = pino({ level: "silent" });
const REF = { installation: 1, repository: 10, name: "acme/widgets" };

/** About 200 characters of a Chinese issue: its clauses run unbroken between the commas. */
const CHINESE_ISSUE =
  "编辑器在保存大型配置文件时崩溃\n\n" +
  "我在使用最新版本的编辑器打开一个大约两百兆的配置文件，修改其中几行之后点击保存按钮，" +
  "程序立即停止响应，大约三十秒后直接崩溃退出。日志里没有任何错误信息，只留下一个空的临时文件。" +
  "在旧版本中同样的操作完全正常，所以我怀疑是最近对文件写入逻辑的修改引起的。" +
  "另外我注意到，当文件小于五十兆时保存一切正常，只有在文件较大时才会出现这种情况。";
/** Six characters from the middle of "所以我怀疑是最近对文件写入逻辑的修改引起的". */
const FRAGMENT = "文件写入逻辑";
const JAPANESE_ISSUE =
  "大きな設定ファイルを保存するとエディタがクラッシュする\n\n" +
  "ログにはエラーメッセージが何も残っておらず、空の一時ファイルだけが残ります。";
const ISSUES = [
  issueMemory(1, CHINESE_ISSUE),
  issueMemory(2, "App crashes when saving a widget on Windows\n\nThe editor crashes on save."),
  issueMemory(
    3,
    "深色模式下设置页面的文字颜色不正确\n\n切换到深色模式以后，部分说明文字几乎看不清。",
  ),
  issueMemory(4, JAPANESE_ISSUE),
  issueMemory(5, "Add support for exporting widgets to CSV"),
];

/** Above any vector score: only keyword hits of these short queries are kept. */
async function keywordHits(memory: PostgresMemory, repository: number, query: string) {
  const hits = await (
    await memory.open({ ...REF, repository })
  ).search(query, { k: 3, minScore: 0.99 });
  return hits.map((hit) => hit.record.id);
}

describe("CJK keywords in PGlite with pgvector: text search in SQL", () => {
  let pglite: Awaited<ReturnType<typeof openPgliteDatabase>>;
  beforeAll(async () => {
    pglite = await openPgliteDatabase();
  }, 120_000);
  afterAll(() => pglite?.close());

  it("finds an issue by a few characters from the middle of its text", async () => {
    const memory = await openMemory(pglite.database);
    expect(memory.searchesInSql).toBe(true);
    await (await memory.open({ ...REF, repository: 11 })).addMany(ISSUES);
    expect(await keywordHits(memory, 11, FRAGMENT)).toEqual(["issue-1"]);
    expect(await keywordHits(memory, 11, "一時ファイル")).toEqual(["issue-4"]);
    expect(await keywordHits(memory, 11, "crashes saving")).toEqual(["issue-2"]);
    await memory.closeAll();
  });

  it("recomputes the words of rows an older Talos wrote, and only those with CJK text", async () => {
    const memory = await openMemory(pglite.database);
    await (await memory.open({ ...REF, repository: 12 })).addMany(ISSUES);
    await memory.closeAll();
    // The words column as an older Talos wrote it: PostgreSQL's words of the text as it is.
    await pglite.owner.query(
      `UPDATE talos.memory_records
          SET words = setweight(to_tsvector('english', split_part(text, E'\\n', 1)), 'A')
                      || to_tsvector('english', text)
        WHERE repository_id = 12`,
    );
    const words = async () =>
      (
        await pglite.owner.query<{ id: string; words: string | null }>(
          "SELECT id, words::text AS words FROM talos.memory_records WHERE repository_id = 12 ORDER BY id",
        )
      ).rows;
    const old = await words();
    const stale = await openMemory(pglite.database);
    expect(await keywordHits(stale, 12, FRAGMENT)).toEqual([]);
    await stale.closeAll();

    // Run as the tables' owner, not a superuser: FORCE ROW LEVEL SECURITY binds it.
    const migration = migrations("talos").find((step) => step.includes("SET words = NULL"));
    await pglite.owner.exec(`CREATE ROLE talos_owner NOSUPERUSER NOBYPASSRLS;
      GRANT USAGE ON SCHEMA talos TO talos_owner;
      ALTER TABLE talos.memory_records OWNER TO talos_owner;`);
    try {
      await pglite.owner.exec(`SET ROLE talos_owner; ${migration!}; RESET ROLE;`);
    } finally {
      await pglite.owner.exec(`RESET ROLE; ALTER TABLE talos.memory_records OWNER TO postgres;`);
    }
    const forced = await pglite.owner.query<{ forced: boolean }>(
      "SELECT relforcerowsecurity AS forced FROM pg_class WHERE oid = 'talos.memory_records'::regclass",
    );
    expect(forced.rows).toEqual([{ forced: true }]);
    const cleared = await words();
    expect(cleared.filter((row) => row.words === null).map((row) => row.id)).toEqual([
      "issue-1",
      "issue-3",
      "issue-4",
    ]);
    // The first open of the memory (in a process) computes them again.
    const later = await openMemory(pglite.database);
    expect(await keywordHits(later, 12, FRAGMENT)).toEqual(["issue-1"]);
    await later.closeAll();
    const recomputed = await words();
    expect(recomputed.every((row) => row.words !== null)).toBe(true);
    // English text's words are the same as before.
    expect(recomputed.filter((row) => ["issue-2", "issue-5"].includes(row.id))).toEqual(
      old.filter((row) => ["issue-2", "issue-5"].includes(row.id)),
    );
  });
});

describe("the migration's pattern for text with CJK letters", () => {
  it("matches every character forEachKeyword reads as one", () => {
    // PostgreSQL's \uXXXX and \UXXXXXXXX escapes, as a JavaScript regular expression.
    const pattern = new RegExp(
      CJK_CHARACTER.replace(/\\[uU]([0-9a-f]+)/g, (_, hex: string) => `\\u{${hex}}`),
      "u",
    );
    const missed: string[] = [];
    for (let point = 0; point <= 0x10ffff; point++) {
      if (point >= 0xd800 && point <= 0xdfff) continue;
      if (isCjkLetter(point) && !pattern.test(String.fromCodePoint(point)))
        missed.push(point.toString(16));
    }
    expect(missed).toEqual([]);
    expect(pattern.test("A plain English issue — with “quotes”, é and ß")).toBe(false);
  });
});

describe.runIf(available)("CJK keywords in PostgreSQL without pgvector: indexes in RAM", () => {
  const schema = freshSchema("talos_test");
  let database: Database;
  beforeAll(async () => {
    database = await Database.open({ url: TEST_DATABASE_URL, schema, log });
  });
  afterAll(async () => {
    await database?.close();
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  });

  it("finds an issue by a few characters from the middle of its text", async () => {
    const memory = await openMemory(database);
    expect(memory.searchesInSql).toBe(false);
    await (await memory.open(REF)).addMany(ISSUES);
    expect(await keywordHits(memory, REF.repository, FRAGMENT)).toEqual(["issue-1"]);
    expect(await keywordHits(memory, REF.repository, "一時ファイル")).toEqual(["issue-4"]);
    await memory.closeAll();
  });
});
