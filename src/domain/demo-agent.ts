/**
 * The built-in demo agent, used when no `config.agent.url` is set: `agent.run` answers at once with
 * a run id, then plays a scripted run on the user's channel — the agent events one every `stepMs`,
 * then the answer as an agent stream (PROTOCOL §8) token by token, then `agent_completed` — so the
 * status page and SDK users can see agent events and a growing answer without a backend. A
 * subscriber's `cancel` of the answer stops the run.
 */
import type { StreamService } from "../delivery/stream-service.ts";
import { StreamConflictError } from "../delivery/stream-service.ts";
import type { PublishItem } from "../engine/types.ts";

/**
 * The demo's agent events, in order; the last one is terminal. The answer streams between the
 * last two.
 *
 * @example
 * DEMO_AGENT_EVENTS.at(-1) // "agent_completed"
 */
export const DEMO_AGENT_EVENTS = ["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed"] as const;

/** What a demo run needs; time, publishing and streams are passed in. */
export interface DemoRunOptions {
  user: string;
  run: string;
  prompt: string;
  stepMs: number;
  /** Pause between answer tokens. @default stepMs / 10 */
  tokenMs?: number;
  publish: (items: PublishItem[]) => Promise<unknown>;
  /** Where the answer streams. */
  streams: Pick<StreamService, "start" | "append" | "end" | "onCancel">;
  /** Whether an event name is critical (the config's list: all five are, by default). */
  isCritical: (event: string) => boolean;
  /** Stops the run between steps (server stop). */
  signal?: AbortSignal;
  /** @default Bun.sleep */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * The demo answer as tokens (words with their spaces), the way an LLM's arrive.
 *
 * @example
 * demoAnswer("hi").join("") // 'Here is what I found for "hi". …'
 */
export function demoAnswer(prompt: string): string[] {
  const topic = prompt.trim().slice(0, 80) || "your question";
  const text =
    `Here is what I found for "${topic}". I searched the signals feed and three of them stand out. ` +
    "First, demand in the enterprise tier grew 12% week over week, mostly from new accounts. " +
    "Second, two starter users hit their connection limit during the evening peak. " +
    "Third, the agent backend answered every call within its deadline. " +
    "In short: growth is healthy, and the limits are doing their job.";
  return text.match(/\S+\s*/g) ?? [text];
}

/**
 * Publishes the agent events on `user:<user>`, `stepMs` apart, and streams the answer before the
 * last one. Resolves when done (or cancelled); rejects if a publish fails (the agent tracker then
 * reports `agent_failed` for the run).
 *
 * @example
 * void runDemoAgent({ user: "alice", run: "r1", prompt: "hi", stepMs: 150, publish: ctx.publisher.publish, streams: ctx.streams, isCritical: () => true });
 */
export async function runDemoAgent(options: DemoRunOptions): Promise<void> {
  const { user, run, prompt, stepMs, publish, streams, isCritical, signal } = options;
  const sleep = options.sleep ?? ((ms: number) => Bun.sleep(ms));
  const channel = `user:${user}`;
  const tool = "search_signals";
  const steps: Array<[string, Record<string, unknown>]> = [
    ["agent_started", { run, prompt }],
    ["agent_thinking", { run, thought: "Looking for the signals that matter to this question." }],
    ["tool_executing", { run, tool, input: { query: prompt.slice(0, 200) } }],
    ["tool_completed", { run, tool, output: { matches: 3 } }],
  ];
  const emit = (event: string, data: Record<string, unknown>) => publish([{ channel, event, dataJson: JSON.stringify(data), critical: isCritical(event) }]);
  for (const [i, [event, data]] of steps.entries()) {
    if (i > 0) await sleep(stepMs);
    if (signal?.aborted) return;
    await emit(event, data);
  }
  await sleep(stepMs);
  if (signal?.aborted) return;
  const tokens = demoAnswer(prompt);
  const { stream } = await streams.start({ channel, event: "answer", data: { run } });
  const cancelled = new AbortController();
  const stopListening = streams.onCancel((c) => {
    if (c.channel === channel && c.stream === stream) cancelled.abort();
  });
  try {
    for (const token of tokens) {
      await sleep(options.tokenMs ?? stepMs / 10);
      if (signal?.aborted) return;
      if (cancelled.signal.aborted) break;
      try {
        await streams.append(channel, stream, [token]);
      } catch (error) {
        // Cancelled between the check and the append: the stream already ended.
        if (error instanceof StreamConflictError) break;
        throw error;
      }
    }
    if (cancelled.signal.aborted) {
      await emit("agent_completed", { run, stream, cancelled: true, demo: true });
      return;
    }
    await streams.end(channel, stream, "complete", { run, tokens: tokens.length });
    await emit("agent_completed", { run, stream, answer: tokens.join(""), demo: true });
  } finally {
    stopListening();
  }
}
