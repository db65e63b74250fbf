import { expect, test, type Browser, type Page } from "@playwright/test";
import { PASSWORD, checkPage, mailedCode, uniqueEmail, watchConsole } from "./support";

// The admin console (issue 18): a DP student pays, is enrolled with tools and asks for a refund;
// the admin finds them by email, approves the refund (after confirming) and follows the payment
// to Refunded and the tools to deprovisioned; the admin publishes a privacy policy version in
// force now, and the student is stopped by the consent prompt on their next navigation.
const ADMIN_EMAIL = process.env.ADMIN_EMAIL ?? "admin@apranova.local";
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? "";

async function signIn(page: Page, email: string, password: string, next: string): Promise<void> {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("textbox", { name: "Password", exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function newPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  return { page, errors: watchConsole(page) };
}

test("admin: refund a student, take their tools back, publish a policy they must accept", async ({ browser }, testInfo) => {
  test.setTimeout(420_000);
  expect(ADMIN_PASSWORD, "ADMIN_PASSWORD (the local stack's dev admin)").not.toBe("");
  const email = uniqueEmail("refund");

  // --- the student: sign up, pay, get the tools, ask for a refund ---------------------------------
  const { page: student, errors: studentErrors } = await newPage(browser);
  await student.goto("/signup?track=DP");
  await student.getByLabel("Name").fill("Rafa Refund");
  await student.getByLabel("Email").fill(email);
  await student.getByRole("textbox", { name: "Password", exact: true }).fill(PASSWORD);
  await student.getByLabel(/I have read and accept the privacy policy/).check();
  await student.getByLabel(/I accept the terms/).check();
  await student.getByRole("button", { name: "Create account" }).click();
  await expect(student).toHaveURL(/\/verify\?email=/);
  await student.getByLabel("Code").fill(await mailedCode(email));
  await student.getByRole("button", { name: "Confirm my email" }).click();
  await expect(student).toHaveURL(/\/login\?/);
  await student.getByRole("textbox", { name: "Password", exact: true }).fill(PASSWORD);
  await student.getByRole("button", { name: "Sign in" }).click();
  await expect(student).toHaveURL(/\/checkout\?track=DP/);
  await student.getByRole("button", { name: "Pay $499.00" }).click();
  await expect(student).toHaveURL(/\/pay\/cs_/);
  await student.getByLabel("Card number").fill("4242424242424242");
  await student.getByRole("button", { name: /Pay/ }).click();
  await expect(student).toHaveURL(/\/dashboard$/, { timeout: 120_000 });
  await expect(student.getByRole("link", { name: /Open project 1/ })).toBeVisible();

  // A student is not let into the console.
  await student.goto("/admin/users");
  await expect(student.getByRole("heading", { name: "Not allowed" })).toBeVisible();
  await checkPage(student, testInfo, "admin-not-allowed");

  await student.getByRole("link", { name: "Payments" }).first().click();
  await student.getByRole("button", { name: "Ask for a refund" }).click();
  await student.getByLabel("Why are you asking for a refund?").fill("The course is not what I need right now.");
  await student.getByRole("button", { name: "Send request" }).click();
  await expect(student.getByText("Your request was sent.")).toBeVisible();

  // --- the admin ------------------------------------------------------------------------------------
  const { page: admin, errors: adminErrors } = await newPage(browser);
  await signIn(admin, ADMIN_EMAIL, ADMIN_PASSWORD, "/admin");
  await expect(admin).toHaveURL(/\/admin$/);
  await expect(admin.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  await expect(admin.getByRole("region", { name: "Revenue per track" }).locator(".recharts-surface").first()).toBeVisible();
  await expect(admin.getByRole("region", { name: "Enrollments per track" }).locator(".recharts-surface").first()).toBeVisible();
  await checkPage(admin, testInfo, "admin-overview");
  await admin.getByText("Week", { exact: true }).click();
  await expect(admin.getByText(/^w\/c /).first()).toBeVisible();

  // Find the student by email, from the header's Users link.
  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" }).click();
  await expect(admin.getByRole("heading", { level: 1, name: "Users" })).toBeVisible();
  await admin.getByLabel("Email or name").fill(email);
  await admin.getByLabel("Email or name").press("Enter"); // the search is a form: Enter searches
  await expect(admin).toHaveURL(/[?&]q=/);
  await expect(admin.getByRole("table", { name: "Users" }).getByRole("row")).toHaveCount(2); // header + the student
  await checkPage(admin, testInfo, "admin-users");
  await admin.getByRole("link", { name: "Rafa Refund" }).click();

  await expect(admin.getByRole("heading", { level: 1, name: "Rafa Refund" })).toBeVisible();
  const payments = admin.getByRole("table", { name: "Payments of this user" });
  await expect(payments.getByText("Paid", { exact: true })).toBeVisible();
  const tools = admin.getByRole("table", { name: "Tools of this user" });
  await expect(tools.getByText("Ready").first()).toBeVisible();
  await checkPage(admin, testInfo, "admin-user");

  // Approve the refund: the dialog says what will happen; Cancel leaves everything as it was.
  await admin.getByRole("button", { name: /Approve the refund of \$499\.00/ }).click();
  let dialog = admin.getByRole("dialog", { name: "Approve this refund?" });
  await expect(dialog).toContainText("$499.00 goes back to");
  await expect(dialog).toContainText("This cannot be undone.");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(dialog).toBeHidden();
  await admin.getByRole("button", { name: /Approve the refund of \$499\.00/ }).click();
  dialog = admin.getByRole("dialog", { name: "Approve this refund?" });
  await dialog.getByLabel(/Note/).fill("Asked within the first days.");
  await dialog.getByRole("button", { name: "Refund $499.00" }).click();
  await expect(dialog).toBeHidden();
  await expect(admin.getByRole("status").filter({ hasText: "Refund of $499.00" })).toBeVisible();

  // Stripe's refund comes back through the webhook; the deprovision workflow takes the tools back.
  await expect(payments.getByText("Refunded", { exact: true })).toBeVisible({ timeout: 120_000 });
  const toolStates = async () => (await tools.locator("tbody tr td:nth-child(2)").allTextContents()).map((s) => s.trim());
  await expect
    .poll(async () => (await toolStates()).every((s) => s === "Deprovisioned" || s === "Not configured here"), {
      timeout: 180_000,
      message: "every tool taken back",
    })
    .toBe(true);
  expect(await toolStates()).toContain("Deprovisioned");
  await expect(admin.getByRole("table", { name: "Profile" })).toContainText("Refunded");
  await checkPage(admin, testInfo, "admin-user-refunded");

  // The other pages: refunds (the decided one), payments, submissions, the audit log, retention.
  await admin.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Refunds" }).click();
  await expect(admin.getByRole("heading", { level: 1, name: "Refund requests" })).toBeVisible();
  await checkPage(admin, testInfo, "admin-refunds");
  await admin.getByRole("combobox", { name: "Status" }).click();
  await admin.getByRole("option", { name: "Approved" }).click();
  await expect(admin.getByRole("table", { name: "Refund requests" })).toContainText("Asked within the first days.");

  await admin.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Payments" }).click();
  await expect(admin.getByRole("table", { name: "Payments" }).getByRole("row").filter({ hasText: email })).toContainText("Refunded");
  await checkPage(admin, testInfo, "admin-payments");

  await admin.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Submissions" }).click();
  await expect(admin.getByRole("heading", { level: 1, name: "Submissions" })).toBeVisible();
  await checkPage(admin, testInfo, "admin-submissions");

  await admin.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Audit log" }).click();
  await admin.getByLabel("Action").fill("REFUND_DECIDED");
  await admin.getByRole("button", { name: "Filter" }).click();
  await expect(admin.getByRole("table", { name: "Audit log" })).toContainText("APPROVED");
  await checkPage(admin, testInfo, "admin-audit");

  await admin.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Retention" }).click();
  await expect(admin.getByText(/Legal minimum: \d+ days/).first()).toBeVisible();
  await checkPage(admin, testInfo, "admin-retention");

  // Publish a privacy policy version in force now (keyboard: the form submits with Enter).
  await admin.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Policies" }).click();
  await expect(admin.getByText(/In force: version/)).toBeVisible();
  const version = await admin.getByRole("textbox", { name: "Version" }).inputValue();
  expect(version).toMatch(/^\d+(\.\d+)*$/);
  await admin.getByLabel("What changed").fill("We now keep refund notes with each decision.");
  await admin.getByRole("textbox", { name: "Full text" }).fill("Privacy policy\n\nWe keep what we need to teach you, and no more.");
  await admin.getByRole("tab", { name: "Preview" }).click();
  await expect(admin.getByRole("tabpanel", { name: "Preview" })).toContainText("We keep what we need to teach you");
  await checkPage(admin, testInfo, "admin-policies");
  await admin.getByRole("button", { name: "Publish…" }).click();
  dialog = admin.getByRole("dialog", { name: `Publish privacy policy version ${version}?` });
  await expect(dialog).toContainText("Right away, every student must accept");
  await dialog.getByRole("button", { name: `Publish version ${version}` }).click();
  await expect(admin.getByRole("status").filter({ hasText: `version ${version} is in force now` })).toBeVisible();

  // --- the student, on their next navigation: the blocking prompt -----------------------------------
  await student.goto("/dashboard");
  const prompt = student.getByRole("dialog", { name: "Our privacy policy and terms have changed" });
  await expect(prompt).toBeVisible();
  await expect(prompt).toContainText("We now keep refund notes with each decision.");
  await expect(prompt.getByLabel(new RegExp(`I accept the privacy policy \\(version ${version.replace(/\./g, "\\.")}\\)`))).toBeVisible();
  await checkPage(student, testInfo, "consent-prompt");
  await prompt.getByLabel(/I accept the privacy policy/).check();
  await prompt.getByLabel(/I accept the terms/).check();
  await prompt.getByRole("button", { name: "Accept and continue" }).click();
  await expect(prompt).toBeHidden();
  await expect(student.getByText("Your payment was refunded, so your enrollment has ended.")).toBeVisible();

  expect(adminErrors).toEqual([]);
  expect(studentErrors).toEqual([]);
});
