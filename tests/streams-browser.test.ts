/**
 * The status page's agent answer (PROTOCOL §8) in real Chromium: the demo agent's answer grows
 * token by token, a reload mid-answer shows the text so far at once (the join's snapshot) and
 * keeps growing to the whole answer, and Stop cancels a second answer mid-way.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signToken } from "../src/auth/tokens.ts";
import { demoAnswer } from "../src/domain/demo-agent.ts";
import { spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { JWT_SECRET } from "./helpers/server.ts";

const CHROMIUM = "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) {
  if (process.env.CI === "true") throw new Error(`streams browser test: ${CHROMIUM} is missing (CI must install Debian's chromium)`);
  console.warn(`streams browser test skipped: ${CHROMIUM} not found (apt-get install chromium)`);
}

const dataDir = mkdtempSync(join(tmpdir(), "courier-browser-streams-"));
const children: CourierProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

/** The prompt the page's "Run the demo agent" button sends. */
const PAGE_PROMPT = "Summarise today's signals";

describe.skipIf(!available)("status page agent answer in Chromium", () => {
  test("grows token by token, survives a reload mid-answer, and Stop cancels", async () => {
    const { chromium } = await import("playwright-core");
    // Slow demo pace (≈ 100 ms a token, ≈ 6.5 s an answer) so a reload lands mid-answer even on a loaded machine.
    const node = await spawnCourier({ COURIER_DATA_DIR: dataDir, COURIER_AGENT__DEMO_STEP_MS: "1000" });
    children.push(node);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
    });
    try {
      const page = await browser.newPage();
      const token = await signToken(JWT_SECRET, { sub: "streamer", tier: "pro" }, 600);
      await page.goto(`${node.http}/?token=${token}`);
      await page.waitForSelector('#status[data-status="live"]', { timeout: 10_000 });
      await page.click("#run-agent");
      await page.waitForSelector('#answer[data-status="streaming"]', { timeout: 20_000 });
      await page.waitForFunction(() => (document.getElementById("answer-text")!.textContent ?? "").split(" ").length >= 4, undefined, { timeout: 10_000 });
      expect(await page.isVisible("#stop-answer")).toBe(true);
      const beforeReload = (await page.textContent("#answer-text"))!;
      const stream = await page.getAttribute("#answer", "data-stream");

      await page.reload();
      await page.waitForSelector('#status[data-status="live"]', { timeout: 10_000 });
      await page.waitForSelector(`#answer[data-stream="${stream}"]`, { timeout: 10_000 });
      const afterReload = (await page.textContent("#answer-text"))!;
      expect(afterReload.startsWith(beforeReload)).toBe(true);
      await page.waitForSelector('#answer[data-status="complete"]', { timeout: 20_000 });
      expect(await page.textContent("#answer-text")).toBe(demoAnswer(PAGE_PROMPT).join(""));
      expect(await page.isVisible("#stop-answer")).toBe(false);

      await page.click("#run-agent");
      await page.waitForFunction((first) => {
        const el = document.getElementById("answer")!;
        return el.dataset.stream !== first && el.dataset.status === "streaming" && (document.getElementById("answer-text")!.textContent ?? "").length > 0;
      }, stream, { timeout: 20_000 });
      await page.click("#stop-answer");
      await page.waitForSelector('#answer[data-status="cancelled"]', { timeout: 10_000 });
      const stopped = (await page.textContent("#answer-text"))!;
      expect(stopped.length).toBeLessThan(demoAnswer(PAGE_PROMPT).join("").length);
      // Since the reload: the first run's agent_completed, then the cancelled one's.
      await page.waitForFunction(() => document.querySelectorAll('#feed li[data-event="agent_completed"]').length === 2, undefined, { timeout: 10_000 });
    } finally {
      await browser.close();
    }
  }, 90_000);
});
