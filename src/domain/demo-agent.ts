/**
 * The built-in demo agent, used when no `config.agent.url` is set: `agent.run` answers at once with
 * a run id, then plays a short scripted run on the user's channel, one step every `stepMs`, so the
 * status page and SDK users can see agent events without a backend.
 */
import type { PublishItem } from "../engine/types.ts";

/**
 * The demo's steps, in order; the last one is terminal.
 *
 * @example
 * DEMO_AGENT_EVENTS.at(-1) // "agent_completed"
 */
export const DEMO_AGENT_EVENTS = ["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed"] as const;

/** What a demo run needs; time and publishing are passed in. */
export interface DemoRunOptions {
  user: string;
  run: string;
  prompt: string;
  stepMs: number;
  publish: (items: PublishItem[]) => Promise<unknown>;
  /** Whether an event name is critical (the config's list: all five are, by default). */
  isCritical: (event: string) => boolean;
  /** Stops the run between steps (server stop). */
  signal?: AbortSignal;
  /** @default Bun.sleep */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Publishes the five demo events on `user:<user>`, `stepMs` apart. Resolves when done; rejects if
 * a publish fails (the agent tracker then reports `agent_failed` for the run).
 *
 * @example
 * void runDemoAgent({ user: "alice", run: "r1", prompt: "hi", stepMs: 150, publish: ctx.publish, isCritical: () => true });
 */
export async function runDemoAgent(options: DemoRunOptions): Promise<void> {
  const { user, run, prompt, stepMs, publish, isCritical, signal } = options;
  const sleep = options.sleep ?? ((ms: number) => Bun.sleep(ms));
  const tool = "search_signals";
  const steps: Array<[string, Record<string, unknown>]> = [
    ["agent_started", { run, prompt }],
    ["agent_thinking", { run, thought: "Looking for the signals that matter to this question." }],
    ["tool_executing", { run, tool, input: { query: prompt.slice(0, 200) } }],
    ["tool_completed", { run, tool, output: { matches: 3 } }],
    ["agent_completed", { run, answer: `Demo answer to "${prompt.slice(0, 80)}": 3 relevant signals found.`, demo: true }],
  ];
  for (const [i, [event, data]] of steps.entries()) {
    if (i > 0) await sleep(stepMs);
    if (signal?.aborted) return;
    await publish([{ channel: `user:${user}`, event, dataJson: JSON.stringify(data), critical: isCritical(event) }]);
  }
}
