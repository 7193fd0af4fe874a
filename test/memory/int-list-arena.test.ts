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
    arena.push(1, 5, 6);
    expect(contents(arena, 1).at(-1)).toEqual([5, 6]);
    // The room abandoned by moves and clears is reclaimed: the array stays near what it holds.
    const live = [...model.values()].reduce((sum, items) => sum + items.length * 2, 0);
    expect(arena.data.length).toBeLessThan(8 * live + 4_096);
  });

  it("lets lists loaded with no spare room grow with RAM near what they hold", () => {
    // As a keyword index restored at a start: every word's postings in room just big enough,
    // then new records add a posting to most of the words, over and over.
    const lists = 50;
    const items = 10_000;
    const arena = new IntListArena(2);
    arena.allocate(Array.from({ length: lists }, () => items));
    for (let list = 0; list < lists; list++)
      for (let i = 0; i < items; i++) arena.push(list, i, list);
    const heldBytes = () => {
      let ints = 0;
      for (let list = 0; list < lists; list++) ints += arena.count(list) * 2;
      return ints * 4;
    };
    expect(arena.bytes).toBeLessThan(1.01 * heldBytes());
    for (let round = 0; round < 2_000; round++)
      for (let list = 0; list < lists; list++) arena.push(list, items + round, list);
    // Moves leave the old room behind, and a moved list has room to spare: both bounded.
    expect(arena.bytes).toBeLessThan(2 * heldBytes());
    for (let list = 0; list < lists; list++) {
      expect(arena.count(list)).toBe(items + 2_000);
      const start = arena.start(list);
      expect(arena.data[start + 2 * (items + 1_999)]).toBe(items + 1_999);
      expect(arena.data[start + 2 * (items + 1_999) + 1]).toBe(list);
    }
  });

  it("loaded with room to grow, lets each big list take an eighth more before any moves", () => {
    // As a keyword index's postings restored at a start: then each record added pushes onto
    // the lists of its words. Small lists get no spare room: they are cheap to move.
    const rooms = [10_000, 800, 64, 63, 1];
    const arena = new IntListArena(2);
    arena.allocate(rooms, { growth: true });
    rooms.forEach((room, list) => {
      for (let i = 0; i < room; i++) arena.push(list, i, list);
    });
    const starts = rooms.map((_, list) => arena.start(list));
    const data = arena.data;
    [0, 1, 2].forEach((list) => {
      for (let i = 0; i < rooms[list]! >> 3; i++) arena.push(list, rooms[list]! + i, list);
    });
    // Each big list grew by an eighth where it was: nothing moved, and the array is the same one.
    expect(rooms.map((_, list) => arena.start(list))).toEqual(starts);
    expect(arena.data).toBe(data);
    // A small list is full: its next push moves it.
    arena.push(3, 63, 3);
    expect(arena.start(3)).not.toBe(starts[3]);
    expect(contents(arena, 3)).toHaveLength(64);
    // The next push moves a full big list.
    arena.push(0, -1, -1);
    expect(arena.start(0)).not.toBe(starts[0]);
    expect(contents(arena, 0).at(-1)).toEqual([-1, -1]);
    expect(contents(arena, 0)).toHaveLength(10_000 + 1_250 + 1);
    // Without `growth`, the first push onto a full list moves it.
    const exact = new IntListArena(2);
    exact.allocate([800]);
    for (let i = 0; i < 800; i++) exact.push(0, i, 0);
    const before = exact.start(0);
    exact.push(0, 800, 0);
    expect(exact.start(0)).not.toBe(before);
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
