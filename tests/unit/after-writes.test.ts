import { expect, test } from "bun:test";
import { AfterWrites } from "../../src/server/after-writes.ts";

const nextImmediate = () => new Promise<void>((resolve) => setImmediate(resolve));

test("tasks run in order after the turn and its microtasks, all in one immediate", async () => {
  const later = new AfterWrites();
  const order: string[] = [];
  later.run(() => order.push("a"));
  queueMicrotask(() => order.push("microtask"));
  later.run(() => order.push("b"));
  // Queued after the first task: runs after the whole drain, so no second immediate was used.
  setImmediate(() => order.push("immediate queued after a"));
  expect(order).toEqual([]);
  await nextImmediate();
  expect(order).toEqual(["microtask", "a", "b", "immediate queued after a"]);
});

test("a task queued by a task runs in the next drain; one that throws loses only itself", async () => {
  const later = new AfterWrites();
  const order: string[] = [];
  later.run(() => {
    order.push("first");
    later.run(() => order.push("queued by first"));
  });
  later.run(() => {
    throw new Error("a broken record");
  });
  later.run(() => order.push("after the throw"));
  await nextImmediate();
  expect(order).toEqual(["first", "after the throw"]);
  await nextImmediate();
  expect(order).toEqual(["first", "after the throw", "queued by first"]);
});
