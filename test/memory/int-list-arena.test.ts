import { describe, expect, it } from "vitest";
import { IntListArena } from "../../src/memory/int-list-arena.js";
import { seededRandom } from "../helpers/seeded-random.js";

function contents(arena: IntListArena, list: number): number[][] {
  const items: number[][] = [];
  const start = arena.start(list);
  for (let i = 0; i < arena.count(list); i++)
    items.push(
      Array.from(arena.data.subarray(start + i * arena.width, start + (i + 1) * arena.width)),
    );
  return items;
}

const sorted = (items: number[][]) => [...items].sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);

describe("the int list arena", () => {
  it("keeps many lists through pushes, removals, replacements and compactions, as plain arrays would", () => {
    const next = seededRandom(3);
    const arena = new IntListArena(2);
    const model = new Map<number, number[][]>();
    for (let step = 0; step < 20_000; step++) {
      const list = Math.floor(next() * 300);
      const items = model.get(list) ?? [];
      const roll = next();
      if (roll < 0.6) {
        const item = [Math.floor(next() * 1e6), Math.floor(next() * 1e6)];
        arena.push(list, item[0]!, item[1]!);
        items.push(item);
      } else if (roll < 0.8 && items.length > 0) {
        const index = Math.floor(next() * items.length);
        arena.removeAt(list, index);
        items[index] = items.at(-1)!;
        items.pop();
      } else if (roll < 0.9) {
        const values = Array.from({ length: 2 * Math.floor(next() * 5) }, () => step);
        arena.set(list, values);
        items.length = 0;
        for (let i = 0; i < values.length; i += 2) items.push([values[i]!, values[i + 1]!]);
      } else {
        arena.clear(list);
        items.length = 0;
      }
      model.set(list, items);
    }
    for (const [list, items] of model) expect(sorted(contents(arena, list))).toEqual(sorted(items));
    arena.trim();
    for (const [list, items] of model) expect(sorted(contents(arena, list))).toEqual(sorted(items));
    arena.push(1, 5, 6);
    expect(contents(arena, 1).at(-1)).toEqual([5, 6]);
    // The room abandoned by moves and clears is reclaimed: the array stays near what it holds.
    const live = [...model.values()].reduce((sum, items) => sum + items.length * 2, 0);
    expect(arena.data.length).toBeLessThan(8 * live + 4_096);
  });

  it("counts an unused list as empty, and holds one-int items", () => {
    const arena = new IntListArena(1);
    expect(arena.count(1_000)).toBe(0);
    arena.set(5, [7, 8, 9]);
    arena.push(5, 10);
    expect(contents(arena, 5)).toEqual([[7], [8], [9], [10]]);
    arena.removeAt(5, 0);
    expect(contents(arena, 5)).toEqual([[10], [8], [9]]);
  });
});
