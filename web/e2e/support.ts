import AxeBuilder from "@axe-core/playwright";
import { expect, type Page, type TestInfo } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export const API_URL = process.env.API_URL ?? "http://127.0.0.1:3000";
export const PASSWORD = "Learn-Data-2026!";

/** The newest 6-digit code mailed to ``email``, read from the local mailbox as a person would. */
export async function mailedCode(email: string, after?: string): Promise<string> {
  let found: string | undefined;
  await expect
    .poll(
      async () => {
        const response = await fetch(`${API_URL}/_local/mailbox`);
        const { items } = (await response.json()) as {
          items: { id: string; to: string[]; subject: string | null; body_text: string | null; body_html: string | null }[];
        };
        for (const item of items) {
          if (!item.to.some((to) => to.toLowerCase() === email.toLowerCase())) continue;
          if (!/code/i.test(item.subject ?? "")) continue;
          if (after && item.id === after) return undefined;
          const match = /\b(\d{6})\b/.exec(item.body_text ?? item.body_html ?? "");
          if (match) {
            found = match[1];
            return found;
          }
        }
        return undefined;
      },
      { timeout: 30_000, message: `a code mailed to ${email}` },
    )
    .toBeTruthy();
  return found!;
}

export async function mailTo(email: string, subject: RegExp): Promise<{ body_text: string | null; body_html: string | null }> {
  let mail: { body_text: string | null; body_html: string | null } | undefined;
  await expect
    .poll(
      async () => {
        const { items } = (await (await fetch(`${API_URL}/_local/mailbox`)).json()) as {
          items: { to: string[]; subject: string | null; body_text: string | null; body_html: string | null }[];
        };
        mail = items.find((i) => i.to.some((to) => to.toLowerCase() === email.toLowerCase()) && subject.test(i.subject ?? ""));
        return mail !== undefined;
      },
      { timeout: 60_000, message: `an email to ${email} about ${subject}` },
    )
    .toBe(true);
  return mail!;
}

/** The page has no serious or critical accessibility violation, and is photographed at 1280
 * and 375 px (test artifacts, not committed). */
export async function checkPage(page: Page, testInfo: TestInfo, name: string, options: { networkIdle?: boolean } = {}): Promise<void> {
  // A page with Chromium's PDF viewer in a frame may never report the network idle (the viewer's
  // own frames): such a page waits for its content in the test instead.
  if (options.networkIdle !== false) await page.waitForLoadState("networkidle");
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => `${n.target.join(" ")} ${n.any.map((a) => a.message).join(" ")}`).join(", ")})`), `axe on ${name}`).toEqual([]);
  const dir = join(testInfo.config.rootDir, "..", "e2e", "screenshots");
  mkdirSync(dir, { recursive: true });
  const size = page.viewportSize() ?? { width: 1280, height: 800 };
  await page.screenshot({ path: join(dir, `${name}-1280.png`), fullPage: true });
  await page.setViewportSize({ width: 375, height: 800 });
  await page.waitForTimeout(150);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, `${name} fits 375 px without sideways scrolling`).toBeLessThanOrEqual(1);
  await page.screenshot({ path: join(dir, `${name}-375.png`), fullPage: true });
  await page.setViewportSize(size);
}

/** Console errors and failed page errors fail the test (a 4xx the app handles is logged by
 * Chromium as a failed resource: those are checked by the app's own behaviour instead). */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  return errors;
}

export function uniqueEmail(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}@example.com`;
}
