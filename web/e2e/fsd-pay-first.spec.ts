import { expect, test } from "@playwright/test";
import { PASSWORD, checkPage, mailTo, mailedCode, uniqueEmail, watchConsole } from "./support";

// A Full-Stack Developer who pays first: get started → pay on Stripe's page → the emailed link to
// set a password with the mailed code → sign in → start the cloud workspace.
test("FSD pay-first: pay, set a password, sign in, start the workspace", async ({ page }, testInfo) => {
  const errors = watchConsole(page);
  const email = uniqueEmail("fsd");

  await page.goto("/");
  await page.getByRole("link", { name: "Pay first for Full-Stack Developer" }).click();
  await expect(page).toHaveURL(/\/get-started\?track=FSD/);
  await expect(page.getByRole("button", { name: "Pay $599.00" })).toBeVisible();
  await checkPage(page, testInfo, "get-started");
  await page.getByLabel("Name").fill("Fran Stack");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel(/I have read and accept the privacy policy/).check();
  await page.getByLabel(/I accept the terms/).check();
  await page.getByRole("button", { name: "Pay $599.00" }).click();

  await expect(page).toHaveURL(/\/pay\/cs_/);
  await page.getByLabel("Card number").fill("4242424242424242");
  await page.getByRole("button", { name: /Pay/ }).click();

  await expect(page).toHaveURL(/\/payment\/success\?session_id=/);
  await expect(page.getByText("Check your email")).toBeVisible({ timeout: 60_000 });
  await checkPage(page, testInfo, "payment-return-pay-first");

  // The email's link opens the set-password page with the address filled in.
  const mail = await mailTo(email, /set your password/i);
  const link = /https?:\/\/[^\s"<>]+\/set-password\?email=[^\s"<>]+/.exec(mail.body_text ?? mail.body_html ?? "")?.[0];
  expect(link, "the set-password email links to the web app").toBeTruthy();
  await page.goto(link!.replace(/^https?:\/\/[^/]+/, ""));
  await expect(page.getByRole("textbox", { name: "Email", exact: true })).toHaveValue(email);
  await checkPage(page, testInfo, "set-password");
  const code = await mailedCode(email);
  await page.getByLabel("Verification code").fill(code);
  await page.getByRole("textbox", { name: "New password", exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Set my password" }).click();

  await expect(page).toHaveURL(/\/login\?/);
  await expect(page.getByText("Your password is set")).toBeVisible();
  // By keyboard: from the email field, Tab reaches the password, Enter signs in.
  await page.getByRole("textbox", { name: "Email", exact: true }).focus();
  await page.keyboard.press("Tab");
  await expect(page.getByRole("textbox", { name: "Password", exact: true })).toBeFocused();
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");

  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole("heading", { name: /Welcome back, Fran/ })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Your cloud workspace" })).toBeVisible();
  const start = page.getByRole("button", { name: "Start workspace" });
  await expect(start).toBeEnabled({ timeout: 60_000 });
  await checkPage(page, testInfo, "dashboard-fsd");
  await start.click();
  await expect(page.getByLabel(/Workspace (starting|running)/)).toBeVisible({ timeout: 60_000 });
  await expect(page.getByRole("button", { name: "Stop workspace" })).toBeVisible({ timeout: 90_000 });

  expect(errors).toEqual([]);
});
