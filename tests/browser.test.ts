/**
 * The status page in real Chromium (Debian's package, driven by playwright-core): it turns Live,
 * the demo agent's events appear, a simulated job fills its progress bar, stopping the server turns it Connecting/Offline, restarting
 * turns it Live again and the events published meanwhile appear, once each. A screenshot is kept
 * in tests/artifacts/.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signToken } from "../src/auth/tokens.ts";
import { spawnCourier, type CourierProcess } from "./helpers/process.ts";
import { API_KEY, JWT_SECRET } from "./helpers/server.ts";

const CHROMIUM = "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) {
  if (process.env.CI === "true") throw new Error(`browser test: ${CHROMIUM} is missing (CI must install Debian's chromium)`);
  console.warn(`browser test skipped: ${CHROMIUM} not found (apt-get install chromium)`);
}

const ARTIFACTS = join(import.meta.dir, "artifacts");
const dataDir = mkdtempSync(join(tmpdir(), "courier-browser-"));
const children: CourierProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

describe.skipIf(!available)("status page in Chromium", () => {
  test("live badge, demo agent, offline on stop, live again with the missed events", async () => {
    const { chromium } = await import("playwright-core");
    const first = await spawnCourier({ COURIER_DATA_DIR: dataDir });
    children.push(first);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
    });
    try {
      const page = await browser.newPage();
      const token = await signToken(JWT_SECRET, { sub: "alice", tier: "pro" }, 600);
      await page.goto(`${first.http}/?token=${token}`);
      await page.waitForSelector('#status[data-status="live"]', { timeout: 10_000 });
      expect(await page.textContent("#status")).toBe("Live");
      expect(await page.textContent("#user")).toBe("alice");

      await page.click("#run-agent");
      for (const name of ["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed"]) {
        await page.waitForSelector(`#feed li[data-event="${name}"]`, { timeout: 10_000 });
      }

      await page.click("#start-job");
      await page.waitForSelector('#feed li[data-event="job_completed"]', { timeout: 15_000 });
      expect(await page.$eval("#job-progress", (el) => (el as HTMLProgressElement).value)).toBe(100);
      const stages = await page.$$eval('#feed li[data-event="job_stage"]', (items) => items.length);
      expect(stages).toBe(8);

      first.kill("SIGTERM");
      expect(await first.exited).toBe(0);
      await page.waitForSelector('#status:not([data-status="live"])', { timeout: 10_000 });
      expect(["Connecting", "Offline"]).toContain((await page.textContent("#status"))!);

      const second = await spawnCourier({ COURIER_DATA_DIR: dataDir }, first.port);
      children.push(second);
      const stateWhenPublished = await page.getAttribute("#status", "data-status");
      for (const n of [1, 2, 3]) {
        const res = await fetch(`${second.http}/v1/publish`, {
          method: "POST",
          headers: { authorization: `Bearer ${API_KEY}` },
          body: JSON.stringify({ channel: "user:alice", event: `missed_${n}`, data: { n } }),
        });
        expect(res.status).toBe(200);
      }
      await page.waitForSelector('#status[data-status="live"]', { timeout: 15_000 });
      for (const n of [1, 2, 3]) await page.waitForSelector(`#feed li[data-event="missed_${n}"]`, { timeout: 10_000 });
      // Each event once: offsets in the feed are unique.
      const offsets = await page.$$eval("#feed li[data-channel='user:alice']", (items) => items.map((li) => (li as HTMLElement).dataset.offset));
      expect(new Set(offsets).size).toBe(offsets.length);
      console.info(`browser test: the page was "${stateWhenPublished}" when the missed events were published`);

      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "status-page.png"), fullPage: true });
    } finally {
      await browser.close();
    }
  }, 90_000);

  test("without a token the page says so clearly", async () => {
    const { chromium } = await import("playwright-core");
    const node = children.at(-1)!;
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
    try {
      const page = await browser.newPage();
      await page.goto(`${node.http}/`);
      await page.waitForSelector("#no-token:not([hidden])");
      expect(await page.textContent("#status")).toBe("No token");
      await page.click('#dev-token-form button[type="submit"]');
      await page.waitForSelector('#status[data-status="live"]', { timeout: 10_000 });
    } finally {
      await browser.close();
    }
  }, 30_000);
});
