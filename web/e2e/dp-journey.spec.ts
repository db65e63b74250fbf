import { expect, test } from "@playwright/test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PASSWORD, checkPage, mailedCode, uniqueEmail, watchConsole } from "./support";

// A Data Professional student's whole journey in the browser: sign-up → mailed code → pay on
// Stripe's page → provisioning followed live → dashboard → project 1 → a step → a file upload →
// data export → account deletion scheduled and cancelled.
test("DP: sign up, pay, learn, export and change your mind about leaving", async ({ page }, testInfo) => {
  const errors = watchConsole(page);
  const email = uniqueEmail("dp");

  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Data Professional" })).toBeVisible();
  await expect(page.getByText("$499.00")).toBeVisible();
  await checkPage(page, testInfo, "landing");

  await page.getByRole("link", { name: "Create an account for Data Professional" }).click();
  await expect(page).toHaveURL(/\/signup\?track=DP/);
  await expect(page.getByText(/Privacy policy \(version/)).toBeVisible();
  await checkPage(page, testInfo, "signup");
  // The rules are checked beside their fields before anything is sent.
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByText("Enter your name.")).toBeVisible();
  await expect(page.getByText("Accept the privacy policy to continue.")).toBeVisible();
  await page.getByLabel("Name").fill("Dana Data");
  await page.getByLabel("Email").fill(email);
  await page.getByRole("textbox", { name: "Password", exact: true }).fill(PASSWORD);
  await page.getByLabel(/I have read and accept the privacy policy/).check();
  await page.getByLabel(/I accept the terms/).check();
  await page.getByRole("button", { name: "Create account" }).click();

  await expect(page).toHaveURL(/\/verify\?email=/);
  await checkPage(page, testInfo, "verify");
  const code = await mailedCode(email);
  const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
  await page.getByLabel("Code").fill(wrong);
  await page.getByRole("button", { name: "Confirm my email" }).click();
  await expect(page.getByRole("alert")).toContainText("code");
  await page.getByLabel("Code").fill(code);
  await page.getByRole("button", { name: "Confirm my email" }).click();

  await expect(page).toHaveURL(/\/login\?/);
  await expect(page.getByText("Your email is confirmed")).toBeVisible();
  await checkPage(page, testInfo, "login");
  await page.getByRole("textbox", { name: "Password", exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();

  await expect(page).toHaveURL(/\/checkout\?track=DP/);
  await checkPage(page, testInfo, "checkout");
  await page.getByRole("button", { name: "Pay $499.00" }).click();

  // Stripe's page (the local emulator's), paid with the test card.
  await expect(page).toHaveURL(/\/pay\/cs_/);
  await page.getByLabel("Card number").fill("4242424242424242");
  await page.getByRole("button", { name: /Pay/ }).click();

  await expect(page).toHaveURL(/\/payment\/success\?session_id=/);
  await expect(page.getByText("Payment confirmed")).toBeVisible();
  await checkPage(page, testInfo, "payment-return");
  await expect(page).toHaveURL(/\/dashboard$/, { timeout: 120_000 });

  await expect(page.getByRole("heading", { name: /Welcome back, Dana/ })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Your projects" })).toBeVisible();
  await expect(page.getByRole("link", { name: /Open project 1/ })).toBeVisible();
  await checkPage(page, testInfo, "dashboard");

  // Budget: the dashboard's data on screen within 1 s of navigating to it (a full load: the app,
  // the session restored from the refresh cookie, the profile and the track). Measured and reported
  // (an annotation, the console, and dashboard-ms.json beside the screenshots), never asserted: a
  // timing assertion fails on a busy machine without anything being wrong (docs/principles.md).
  const loads: number[] = [];
  for (let i = 0; i < 3; i++) {
    const navigated = Date.now();
    await page.goto("/dashboard");
    await expect(page.getByRole("link", { name: /Open project 1/ })).toBeVisible();
    loads.push(Date.now() - navigated);
  }
  testInfo.annotations.push({ type: "dashboard-ms", description: loads.join(",") });
  console.log(`dashboard data on screen after ${loads.join(", ")} ms (budget 1000 ms)`);
  const artifacts = join(testInfo.config.rootDir, "..", "e2e", "screenshots");
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, "dashboard-ms.json"), JSON.stringify({ loads_ms: loads, budget_ms: 1000 }));

  // The database credentials, revealed on request.
  await page.getByRole("button", { name: "Show my credentials" }).click();
  await expect(page.getByRole("table", { name: "Database credentials" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Copy password" }).first()).toBeVisible();

  // Project 1: start it, tick a step, hand in a file.
  await page.getByRole("link", { name: /Open project 1/ }).click();
  await expect(page).toHaveURL(/\/projects\/\d+$/);
  await expect(page.getByRole("heading", { level: 1, name: /^Project 1:/ })).toBeVisible();
  await page.getByRole("button", { name: "Start this project" }).click();
  await expect(page.getByText("In progress").first()).toBeVisible();
  await page.getByRole("button", { name: "Get the dataset" }).click();
  await expect(page.getByRole("link", { name: /^Download / })).toHaveAttribute("href", /^http/);
  const firstStep = page.getByRole("checkbox").first();
  await expect(firstStep).toBeEnabled();
  await firstStep.click();
  await expect(firstStep).toBeChecked();
  await expect(page.getByText(/^[1-9]\d*% done$/)).toBeVisible();
  await checkPage(page, testInfo, "project");

  const fileForm = page.locator("form").filter({ has: page.locator('input[type="file"]') }).first();
  await expect(fileForm).toBeVisible();
  const accepted = (await fileForm.locator('input[type="file"]').getAttribute("accept")) ?? "";
  const [type, name, content] = accepted.includes("application/pdf")
    ? ["application/pdf", "insights.pdf", "%PDF-1.4\n% a tiny report\n%%EOF\n"]
    : accepted.includes("text/csv")
      ? ["text/csv", "results.csv", "metric,value\nrows,42\n"]
      : accepted.includes("application/zip")
        ? ["application/zip", "work.zip", "PK\u0005\u0006" + "\u0000".repeat(18)]
        : [accepted.split(",")[0] || "text/plain", "notes.txt", "my notes\n"];
  await fileForm.locator('input[type="file"]').setInputFiles({ name, mimeType: type, buffer: Buffer.from(content) });
  await fileForm.getByRole("button", { name: /Submit/ }).click();
  await expect(fileForm.getByText("Submitted. Your trainer will review it.")).toBeVisible();
  await expect(page.getByText(`Attempt 1`).first()).toBeVisible();
  await expect(page.getByText("Waiting for review").first()).toBeVisible();

  // Payments: the history, and the refund rule once work is submitted.
  await page.getByRole("link", { name: "Payments" }).first().click();
  await expect(page.getByText("DP · $499.00")).toBeVisible();
  await checkPage(page, testInfo, "payments");
  // Asked for now, the refund is refused (work submitted, or progress past the limit): the API's
  // reason in plain words, beside the rule.
  await page.getByRole("button", { name: "Ask for a refund" }).click();
  await page.getByLabel("Why are you asking for a refund?").fill("The course is not what I expected.");
  await page.getByRole("button", { name: "Send request" }).click();
  const refusal = page.getByRole("alert").filter({ hasText: "A refund cannot be requested" });
  await expect(refusal).toContainText(
    /Refunds are not possible once you have (submitted work for review|made substantial progress in the course)\./,
  );
  await checkPage(page, testInfo, "payments-refund-refused");
  await page.getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByText("You have not asked for a refund.")).toBeVisible();

  // Privacy centre: an export, followed until it is ready; then deletion scheduled and cancelled.
  await page.getByRole("link", { name: "Privacy" }).first().click();
  await expect(page.getByRole("heading", { name: "Privacy centre" })).toBeVisible();
  await page.getByRole("button", { name: "Request my data" }).click();
  await expect(page.getByRole("button", { name: "Download" })).toBeVisible({ timeout: 60_000 });
  await checkPage(page, testInfo, "privacy");

  await page.getByRole("button", { name: "Delete my account…" }).click();
  await page.getByRole("textbox", { name: "Password", exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Delete my account", exact: true }).click();
  // Scheduling signs out everywhere: the sign-in page says when, and how to cancel.
  await expect(page).toHaveURL(/\/login\?deletion_scheduled=/);
  await expect(page.getByText("Your account is scheduled for deletion")).toBeVisible();
  await checkPage(page, testInfo, "deletion-scheduled");
  await page.getByLabel("Email").fill(email);
  await page.getByRole("textbox", { name: "Password", exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/account\/privacy$/);
  await expect(page.getByText(/Everything will be erased on/)).toBeVisible();
  await page.getByRole("button", { name: "Cancel the deletion" }).click();
  await expect(page.getByRole("button", { name: "Delete my account…" })).toBeVisible();

  // A reload keeps the session (the refresh cookie), the access token is nowhere in storage.
  await page.reload();
  await expect(page.getByRole("heading", { name: "Privacy centre" })).toBeVisible();
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  expect(stored).not.toMatch(/eyJ/);
  const cookies = await page.context().cookies();
  const refresh = cookies.find((c) => c.name === "apranova_refresh");
  expect(refresh).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict", path: "/api/auth/" });

  await page.getByRole("link", { name: "Account" }).first().click();
  await checkPage(page, testInfo, "account");
  await page.getByRole("button", { name: "Sign out", exact: true }).last().click();
  await expect(page).toHaveURL(/\/$/);
  expect((await page.context().cookies()).find((c) => c.name === "apranova_refresh")).toBeUndefined();

  expect(errors).toEqual([]);
});
