/**
 * The load generator: one process per (scenario, target), started by bench/run.ts on its own CPU.
 * argv[2] is `{"scenario","target","params","timeoutMs"}`; the last stdout line is
 * `RESULT <json>`. Bounded by `timeoutMs` whatever the server does.
 */
import type { TargetInfo } from "../lib/target.ts";
import type { LoadResult } from "./common.ts";
import { fanout, type FanoutParams } from "./fanout.ts";
import { idle, type IdleParams } from "./idle.ts";
import { paced, type PacedParams } from "./paced.ts";
import { publishThroughput, type PublishParams } from "./publish.ts";
import { resume, type ResumeParams } from "./resume.ts";
import { roundtrip, type RoundtripParams } from "./roundtrip.ts";
import { soak, type SoakParams } from "./soak.ts";
import { storm, type StormParams } from "./storm.ts";
import { streams, type StreamsParams } from "./streams.ts";

export interface WorkerJob {
  scenario: "fanout" | "paced" | "idle" | "roundtrip" | "storm" | "publish" | "resume" | "soak" | "streams";
  target: TargetInfo;
  params: unknown;
  timeoutMs: number;
}

function run(job: WorkerJob): Promise<LoadResult> {
  switch (job.scenario) {
    case "fanout":
      return fanout(job.target, job.params as FanoutParams);
    case "paced":
      return paced(job.target, job.params as PacedParams);
    case "idle":
      return idle(job.target, job.params as IdleParams);
    case "roundtrip":
      return roundtrip(job.target, job.params as RoundtripParams);
    case "storm":
      return storm(job.target, job.params as StormParams);
    case "publish":
      return publishThroughput(job.target, job.params as PublishParams);
    case "resume":
      return resume(job.target, job.params as ResumeParams);
    case "soak":
      return soak(job.target, job.params as SoakParams);
    case "streams":
      return streams(job.target, job.params as StreamsParams);
  }
}

const job = JSON.parse(process.argv[2] ?? "{}") as WorkerJob;
const timeout = setTimeout(() => {
  console.log(`RESULT ${JSON.stringify({ error: `load generator timed out after ${job.timeoutMs} ms` })}`);
  process.exit(2);
}, job.timeoutMs);

try {
  const result = await run(job);
  console.log(`RESULT ${JSON.stringify(result)}`);
} catch (error) {
  console.log(`RESULT ${JSON.stringify({ error: (error as Error).message })}`);
}
clearTimeout(timeout);
// Open sockets would keep the process alive; the result is out, so leave now.
process.exit(0);
