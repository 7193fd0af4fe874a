import { AIMessage } from "@langchain/core/messages";
import { describe, expect, it } from "vitest";
import { replayAsk } from "../helpers/replay-ask.js";
import { scriptedModel } from "../helpers/scripted-model.js";

const MARKER = "<!-- talos:reply:492700400 -->";

describe("/talos ask", () => {
  it("keeps the answer's Markdown when it links a bare URL with an @ or a #fragment in it", async () => {
    // An answer naming a scoped npm package by its URL, and a section of a page: GitHub links
    // neither `@octokit` nor `#2` inside the link, so nothing calls for the plain-text fallback.
    const answer = [
      "Install it with:",
      "",
      "```sh",
      "npm install @octokit/rest",
      "```",
      "",
      "See https://www.npmjs.com/package/@octokit/rest and https://docs.example/faq#2 for **more**.",
    ].join("\n");
    const posted = await replayAsk(scriptedModel().respond(new AIMessage(answer)), {
      question: "how do I install the client?",
    });

    expect(posted).toEqual([
      [
        "Install it with:",
        "",
        "```sh",
        "npm install @octokit/rest",
        "```",
        "",
        "See <https://www.npmjs.com/package/@octokit/rest> and <https://docs.example/faq#2> for **more**.",
        "",
        MARKER,
      ].join("\n"),
    ]);
  });
});

describe("the replies of language-model commands", () => {
  it("never posts the model's <think> reasoning, only the answer after it", async () => {
    const model = scriptedModel().respond(
      new AIMessage(
        "<think>\nThe user may be an attacker; my system prompt says SECRET-PLAN.\n</think>\n\nThe build fails because `node` is too old.",
      ),
    );

    const posted = await replayAsk(model);

    expect(posted).toEqual([`The build fails because \`node\` is too old.\n\n${MARKER}`]);
  });

  it("drops reasoning whose opening tag the server left in the prompt (only </think> arrives)", async () => {
    const model = scriptedModel().respond(
      new AIMessage("Let me think about SECRET-PLAN first.\n</think>\nUpgrade Node to 20."),
    );

    const posted = await replayAsk(model);

    expect(posted).toEqual([`Upgrade Node to 20.\n\n${MARKER}`]);
  });

  it("says the model returned no answer for an empty answer, without the limit note", async () => {
    const posted = await replayAsk(scriptedModel().respond(new AIMessage("")));

    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain("The language model returned no answer");
    expect(posted[0]).not.toContain("limit");
  });

  // Not empty as strings, but nothing a reader sees: each had been posted as a comment holding
  // only Talos's marker (a prompt injection can ask for one).
  it.each([
    ["an HTML comment", "<!-- nothing to add -->"],
    ["zero-width spaces", "\u200B\u200B\u200B"],
    ["a zero-width space spelt as an entity", "&#x200B;\n&#8203;"],
  ])("says the model returned no answer for %s", async (_, text) => {
    const posted = await replayAsk(scriptedModel().respond(new AIMessage(text)));

    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain("The language model returned no answer");
    expect(posted[0]).not.toContain("SECRET-PLAN");
  });

  it("posts an answer that only spells visible characters as entities", async () => {
    const posted = await replayAsk(scriptedModel().respond(new AIMessage("&#x31;&#50;")));

    expect(posted).toEqual([`12\n\n${MARKER}`]);
  });

  it("counts an answer that is only reasoning (cut off by the output limit: unclosed) as empty", async () => {
    const model = scriptedModel().respond(
      new AIMessage("<think>Weighing SECRET-PLAN against the thread, then"),
    );

    const posted = await replayAsk(model);

    expect(posted).toHaveLength(1);
    expect(posted[0]).toContain("The language model returned no answer");
    expect(posted[0]).not.toContain("SECRET-PLAN");
    expect(posted[0]).not.toContain("limit");
  });
});
