import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Bm25Index } from "../../src/memory/bm25-index.js";
import { countQueryWords, keptHits, type HybridHit } from "../../src/memory/hybrid-search.js";
import {
  forEachKeyword,
  forEachWord,
  isCjkLetter,
  spaceCjkPairs,
} from "../../src/memory/english-words.js";
import { decodeSegmentWords, wordsFile } from "../../src/memory/segment-words.js";
import { expectLinearTime } from "../helpers/hostile-input.js";
import { makeDataDir } from "../helpers/test-app.js";
import { issueMemory, openTestStore, openWithOlderWordsFile } from "../helpers/test-memory.js";

/** A Chinese issue of about 300 characters: its clauses run unbroken between the commas. */
const CHINESE_ISSUE =
  "编辑器在保存大型配置文件时崩溃\n\n" +
  "我在使用最新版本的编辑器打开一个大约两百兆的配置文件，修改其中几行之后点击保存按钮，" +
  "程序立即停止响应，大约三十秒后直接崩溃退出。日志里没有任何错误信息，只留下一个空的临时文件。" +
  "我尝试过关闭所有插件、清除缓存目录以及重新安装程序，问题依然存在。" +
  "在旧版本中同样的操作完全正常，所以我怀疑是最近对文件写入逻辑的修改引起的。" +
  "请问有没有办法在不降级的情况下临时绕过这个问题？如果需要的话我可以提供完整的配置文件和系统信息，" +
  "包括操作系统版本、内存大小以及磁盘格式。另外我注意到，当文件小于五十兆时保存一切正常，" +
  "只有在文件较大时才会出现这种情况，而且每次崩溃之前内存占用都会迅速上升到接近四个吉字节。";
/** Six characters from the middle of "所以我怀疑是最近对文件写入逻辑的修改引起的". */
const CHINESE_FRAGMENT = "文件写入逻辑";

const JAPANESE_ISSUE =
  "大きな設定ファイルを保存するとエディタがクラッシュする\n\n" +
  "最新バージョンのエディタで約二百メガバイトの設定ファイルを開き、数行を変更して保存ボタンを押すと、" +
  "アプリケーションが応答しなくなり、三十秒ほどで強制終了します。" +
  "ログにはエラーメッセージが何も残っておらず、空の一時ファイルだけが残ります。" +
  "プラグインをすべて無効にしても、キャッシュを削除しても、再インストールしても同じです。";
/** Kanji and katakana, from the middle of "空の一時ファイルだけが残ります". */
const JAPANESE_FRAGMENT = "一時ファイル";

/** Korean writes spaces between words, but a particle joins its noun: 파일을 is 파일 + 을. */
const KOREAN_ISSUE =
  "설정 파일을 저장하면 편집기가 멈춥니다\n\n큰 설정 파일을 열고 몇 줄을 고친 뒤 저장 버튼을 누르면 편집기가 응답하지 않습니다.";
const KOREAN_FRAGMENT = "파일";

const OTHERS = {
  english: "App crashes when saving a widget on Windows\n\nThe editor crashes on save.",
  darkMode:
    "深色模式下设置页面的文字颜色不正确\n\n切换到深色模式以后，设置页面里的部分说明文字仍然是黑色的，几乎看不清。",
  csv: "Add support for exporting widgets to CSV",
};

const keywords = (text: string) => {
  const out: string[] = [];
  forEachKeyword(text, (word) => out.push(word));
  return out;
};

function indexOf(texts: Record<string, string>) {
  const index = new Bm25Index();
  Object.entries(texts).forEach(([id, text], number) => index.set(number, id, text));
  return index;
}

describe("forEachKeyword", () => {
  it("reads CJK runs as overlapping pairs, a character alone as itself, other words as before", () => {
    expect(keywords("文件写入逻辑")).toEqual(["文件", "件写", "写入", "入逻", "逻辑"]);
    expect(keywords("用 Rust 写的")).toEqual(["用", "rust", "写的"]);
    // Another script's letters end a run; English words keep their stems and stop words.
    expect(keywords("使用Rust编写的crashes，在Windows上")).toEqual([
      "使用",
      "rust",
      "编写",
      "写的",
      "crash",
      "在",
      "window",
      "上",
    ]);
    // Kanji, kana and the long vowel mark ー (both kana's) are one run; so is half-width kana.
    expect(keywords("メモリー不足")).toEqual(["メモ", "モリ", "リー", "ー不", "不足"]);
    expect(keywords("ｻｰﾊﾞｰ")).toEqual(["ｻｰ", "ｰﾊ", "ﾊﾞ", "ﾞｰ"]);
    // Korean: a noun and its particle meet the noun alone.
    expect(keywords("파일을 파일")).toEqual(["파일", "일을", "파일"]);
    // Characters beyond 16 bits are paired whole, never by halves.
    expect(keywords("𠀀𠀁x𠀂")).toEqual(["𠀀𠀁", "x", "𠀂"]);
    expect(keywords("")).toEqual([]);
  });

  it("leaves the local embedder's words as they were: a CJK run is one word there", () => {
    const words: string[] = [];
    forEachWord("使用Rust编写的crashes", (word) => words.push(word));
    expect(words).toEqual(["使用rust编写的crash"]);
  });

  it("takes as CJK letters exactly the letters and digits of those scripts, every code point", () => {
    const cjk = /^(?=[\p{L}\p{N}])[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Hangul}]$/u;
    const wrong: string[] = [];
    for (let point = 0; point <= 0x10ffff; point++) {
      if (point >= 0xd800 && point <= 0xdfff) continue;
      if (isCjkLetter(point) !== cjk.test(String.fromCodePoint(point)))
        wrong.push(point.toString(16));
    }
    expect(wrong).toEqual([]);
  });

  it("gives PostgreSQL's parser the same CJK words, and English text as it was", () => {
    const english = "App crashes when saving a widget on Windows\n\nThe editor crashes on save.";
    expect(spaceCjkPairs(english)).toBe(english);
    expect(spaceCjkPairs("使用Rust编写的，在Windows上\n内")).toBe(
      " 使用 Rust 编写 写的 ， 在 Windows 上 \n 内 ",
    );
    for (const text of [CHINESE_ISSUE, JAPANESE_ISSUE, KOREAN_ISSUE]) {
      const isCjk = (word: string) => word !== "" && isCjkLetter(word.codePointAt(0)!);
      const spaced = spaceCjkPairs(text)
        .split(/[^\p{L}\p{N}]+/u)
        .filter(isCjk);
      expect(spaced).toEqual(keywords(text).filter(isCjk));
    }
  });

  it("reads hostile CJK text in linear time", async () => {
    const fragments = [
      "文件写入逻辑",
      "内",
      "a内",
      "内a ",
      "内'",
      "ｻｰ",
      "𠀀",
      "파일을 ",
      "\ud840内",
    ];
    // Long enough that the work is measured, not the noise (countFields cuts at 20,000).
    const options = { fragments, runs: ["内", "ー", "𠀀"], length: 131_072 };
    await expectLinearTime((text) => {
      let count = 0;
      forEachKeyword(text, () => count++);
      return count;
    }, options);
    await expectLinearTime((text) => spaceCjkPairs(text).length, options);
  }, 120_000);
});

describe("keyword search in Chinese, Japanese and Korean text", () => {
  it("finds an issue by a few characters from the middle of its text", () => {
    const index = indexOf({
      ...OTHERS,
      chinese: CHINESE_ISSUE,
      japanese: JAPANESE_ISSUE,
      korean: KOREAN_ISSUE,
    });
    for (const [fragment, id] of [
      [CHINESE_FRAGMENT, "chinese"],
      ["内存占用", "chinese"],
      [JAPANESE_FRAGMENT, "japanese"],
      [KOREAN_FRAGMENT, "korean"],
    ] as const) {
      const hits = index.search(fragment, 3);
      expect(hits[0]?.id, fragment).toBe(id);
      expect(hits[0]!.score).toBeGreaterThan(0);
    }
    // The English words of an index with CJK text in it are found as before.
    expect(index.search("crashes saving", 3).map((hit) => hit.id)).toEqual(["english"]);
  });

  it("finds it through a memory reopened from its words files", async () => {
    const directory = makeDataDir();
    const texts = [CHINESE_ISSUE, OTHERS.english, OTHERS.darkMode, JAPANESE_ISSUE, OTHERS.csv];
    const store = await openTestStore(directory, { segmentSize: 2 });
    await store.addMany(texts.map((text, i) => issueMemory(i + 1, text)));
    await store.close();
    expect(existsSync(join(directory, wordsFile(1)))).toBe(true);
    const reopened = await openTestStore(directory, { segmentSize: 2 });
    // Above any vector score: only keyword hits of these short queries are kept.
    const found = async (query: string) =>
      (await reopened.search(query, { k: 3, minScore: 0.99 })).map((hit) => hit.record.id);
    expect(await found(CHINESE_FRAGMENT)).toEqual(["issue-1"]);
    expect(await found(JAPANESE_FRAGMENT)).toEqual(["issue-4"]);
    await reopened.close();
  });
});

describe("a words file counted before CJK text was split", () => {
  it("is not read as current: it is recounted, said so, and written again", async () => {
    const SEGMENT_SIZE = 4;
    const texts = [
      CHINESE_ISSUE,
      OTHERS.english,
      OTHERS.darkMode,
      OTHERS.csv,
      JAPANESE_ISSUE,
      KOREAN_ISSUE,
    ];
    // Version 1's file, as an older Talos wrote it: words that give issue 1 the word "zebra",
    // under the hash of issue 1's text. Read as current, "zebra" would find it.
    const { file, old, current, store, logged } = await openWithOlderWordsFile({
      texts,
      segmentSize: SEGMENT_SIZE,
      version: 1,
      firstWords: "Zebra\n\nzebra",
    });
    expect(decodeSegmentWords(old, SEGMENT_SIZE)).toBe("counted by words file version 1, not 3");
    const found = async (query: string) =>
      (await store.search(query, { k: 3, minScore: 0.99 })).map((hit) => hit.record.id);
    expect(await found("zebra")).toEqual([]);
    expect(await found(CHINESE_FRAGMENT)).toEqual(["issue-1"]);
    await store.close();
    expect(logged).toEqual(["memory words file not usable; recounting"]);
    expect(readFileSync(file)).toEqual(current);
  });
});

describe("a short query, whose keyword hits are kept below minScore", () => {
  const unrelated: HybridHit = { id: "dark-mode", score: 0, keyword: true, shared: 0 };
  const record = issueMemory(2, "深色模式的问题\n\n切换主题后颜色不对");
  const kept = (query: string) =>
    keptHits(
      [unrelated],
      query,
      { k: 5, minScore: 0.4 },
      async () => new Map([[unrelated.id, 0]]),
      async () => record,
    );

  it("counts a Chinese sentence as its words (one per two characters), not as one", () => {
    expect(countQueryWords("导出表格时程序崩溃的问题")).toBe(6);
    expect(countQueryWords("文件写入逻辑")).toBe(3);
    expect(countQueryWords("使用Rust编写 the parser, 2 times")).toBe(7);
    expect(countQueryWords("how to fix it")).toBe(4);
  });

  it("keeps a keyword hit for a fragment, and not for a sentence sharing only a pair with it", async () => {
    // The sentence shares 问题 ("problem") with an unrelated issue: as one word, it was short.
    expect(await kept("导出表格时程序崩溃的问题")).toEqual([]);
    expect((await kept("颜色的问题")).map((hit) => hit.record.id)).toEqual([record.id]);
  });
});
