import { expect, test, type Browser, type Page } from "@playwright/test";
import { PASSWORD, checkPage, mailedCode, uniqueEmail, watchConsole } from "./support";

// The trainer's review desk (issue 18): a Data Professional student hands in project 1 (a link, a
// repository at a pinned commit, a PDF); the DP trainer they were assigned to at enrollment opens
// the PDF from the queue, sees it inline and sends it back with feedback; the student reads the
// feedback and hands in a new PDF; the trainer approves everything and sees project 2 unlocked.
// The dev trainer's credentials come from the local stack (tests/e2e/test_web_app.py passes them).
const TRAINER_EMAIL = process.env.TRAINER_EMAIL ?? "";
const TRAINER_PASSWORD = process.env.TRAINER_PASSWORD ?? "";
const COMMIT = "3f2a9c1b7e4d5a6f8091b2c3d4e5f60718293a4b";
// The submission page shows the PDF in Chromium's viewer: its content is awaited before axe runs.
const PDF_SHOWN = { networkIdle: false };

/** A small, well-formed one-page PDF saying ``text`` (the offsets in its xref table are real). */
function pdf(text: string): Buffer {
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    "", // the content stream, below
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  const stream = `BT /F1 18 Tf 72 720 Td (${text}) Tj ET`;
  objects[3] = `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`;
  let body = "%PDF-1.4\n";
  const offsets: number[] = [];
  objects.forEach((object, i) => {
    offsets.push(body.length);
    body += `${i + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  body += offsets.map((offset) => `${String(offset).padStart(10, "0")} 00000 n \n`).join("");
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(body, "latin1");
}

async function newPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  return context.newPage();
}

/** Sign up for DP, confirm the mailed code, sign in, pay with the test card: the dashboard. */
async function enrolledStudent(page: Page, name: string, email: string): Promise<void> {
  await page.goto("/signup?track=DP");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("textbox", { name: "Password", exact: true }).fill(PASSWORD);
  await page.getByLabel(/I have read and accept the privacy policy/).check();
  await page.getByLabel(/I accept the terms/).check();
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/verify\?email=/);
  await page.getByLabel("Code").fill(await mailedCode(email));
  await page.getByRole("button", { name: "Confirm my email" }).click();
  await expect(page).toHaveURL(/\/login\?/);
  await page.getByRole("textbox", { name: "Password", exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/checkout\?track=DP/);
  await page.getByRole("button", { name: "Pay $499.00" }).click();
  await expect(page).toHaveURL(/\/pay\/cs_/);
  await page.getByLabel("Card number").fill("4242424242424242");
  await page.getByRole("button", { name: /Pay/ }).click();
  await expect(page).toHaveURL(/\/dashboard$/, { timeout: 120_000 });
}

async function submitPdf(page: Page, content: Buffer, filename: string): Promise<void> {
  const form = page.getByRole("form", { name: "Submit PDF insights report" });
  await form.locator('input[type="file"]').setInputFiles({ name: filename, mimeType: "application/pdf", buffer: content });
  await form.getByRole("button", { name: /Submit/ }).click();
  await expect(form.getByText("Submitted. Your trainer will review it.")).toBeVisible();
}

/** From the queue, the student's submission of ``deliverable``. */
async function openFromQueue(trainer: Page, student: string, deliverable: string): Promise<void> {
  await trainer.getByRole("link", { name: "Review queue" }).first().click();
  await expect(trainer.getByRole("heading", { level: 1, name: "Review queue" })).toBeVisible();
  await trainer.getByRole("link", { name: `${student}: ${deliverable}` }).click();
  await expect(trainer).toHaveURL(/\/trainer\/submissions\/[0-9a-f-]{36}$/);
  await expect(trainer.getByRole("heading", { level: 1, name: new RegExp(`^${deliverable}: attempt`) })).toBeVisible();
}

async function approve(trainer: Page, expected: RegExp): Promise<void> {
  // By keyboard: the decision with Space, the form sent with Enter, the confirmation with Enter.
  await trainer.getByRole("radio", { name: /^Approve/ }).focus();
  await trainer.keyboard.press("Space");
  await expect(trainer.getByRole("radio", { name: /^Approve/ })).toBeChecked();
  await trainer.getByRole("button", { name: "Review…" }).press("Enter");
  const dialog = trainer.getByRole("dialog", { name: "Approve this attempt?" });
  await expect(dialog).toBeVisible();
  await dialog.getByRole("button", { name: "Approve", exact: true }).press("Enter");
  await expect(trainer.getByRole("status").filter({ hasText: "Review sent" })).toContainText(expected);
}

test("a trainer sends a PDF back with feedback, then approves the resubmission and unlocks project 2", async ({ browser }, testInfo) => {
  expect(TRAINER_EMAIL, "TRAINER_EMAIL and TRAINER_PASSWORD: the local stack's DP trainer").not.toBe("");
  const suffix = Math.random().toString(36).replace(/[^a-z]/g, "").slice(0, 6);
  const name = `Rita Review ${suffix}`;
  const email = uniqueEmail("review");

  // The student: enrolled in DP (assigned to the DP trainer), project 1 handed in.
  const student = await newPage(browser);
  const studentErrors = watchConsole(student);
  await enrolledStudent(student, name, email);

  // A student opening the trainer's pages sees a plain "not allowed" page.
  await student.goto("/trainer");
  await expect(student.getByRole("heading", { level: 1, name: "Not allowed" })).toBeVisible();
  await checkPage(student, testInfo, "trainer-not-allowed");
  await student.goto("/trainer/students");
  await expect(student.getByRole("heading", { level: 1, name: "Not allowed" })).toBeVisible();

  await student.goto("/dashboard");
  await student.getByRole("link", { name: /Open project 1/ }).click();
  await expect(student.getByRole("heading", { level: 1, name: /^Project 1:/ })).toBeVisible();
  await student.getByRole("button", { name: "Start this project" }).click();
  await expect(student.getByRole("form", { name: "Submit PDF insights report" })).toBeVisible();
  const link = student.getByRole("form", { name: "Submit Superset dashboard URL" });
  await link.getByLabel("Link").fill("https://superset.example.com/superset/dashboard/7/");
  await link.getByRole("button", { name: /Submit/ }).click();
  await expect(link.getByText("Submitted. Your trainer will review it.")).toBeVisible();
  const repo = student.getByRole("form", { name: "Submit SQL queries repository" });
  await repo.getByLabel("Repository URL").fill("https://github.com/rita-review/sales-kpis");
  await repo.getByLabel(/Commit/).fill(COMMIT);
  await repo.getByRole("button", { name: /Submit/ }).click();
  await expect(repo.getByText("Submitted. Your trainer will review it.")).toBeVisible();
  const firstDraft = pdf(`Insights by ${name}: first draft`);
  await submitPdf(student, firstDraft, "insights.pdf");

  // The trainer signs in (a trainer lands on the review queue) and finds the PDF, oldest first.
  const trainer = await newPage(browser);
  const trainerErrors = watchConsole(trainer);
  await trainer.goto("/trainer");
  await expect(trainer).toHaveURL(/\/login\?next=%2Ftrainer/);
  await trainer.getByLabel("Email").fill(TRAINER_EMAIL);
  await trainer.getByRole("textbox", { name: "Password", exact: true }).fill(TRAINER_PASSWORD);
  await trainer.getByRole("button", { name: "Sign in" }).click();
  await expect(trainer).toHaveURL(/\/trainer$/);
  await expect(trainer.getByRole("heading", { level: 1, name: "Review queue" })).toBeVisible();
  const mine = trainer.getByRole("listitem").filter({ hasText: name });
  await expect(mine).toHaveCount(3);
  await expect(mine.first()).toContainText("Superset dashboard URL"); // oldest first
  await expect(mine.last()).toContainText("PDF insights report");
  await expect(mine.first()).toContainText(/Waiting (under a minute|\d+ minutes?)/);
  await checkPage(trainer, testInfo, "trainer-queue");

  // The filters are in the URL: a filtered queue is a link.
  await trainer.getByLabel("Track").selectOption("DP");
  await expect(trainer).toHaveURL(/\/trainer\?track=DP$/);
  const project1 = await trainer.getByLabel("Project").locator("option", { hasText: "DP · Project 1:" }).getAttribute("value");
  await trainer.getByLabel("Project").selectOption(project1!);
  await expect(trainer).toHaveURL(/\/trainer\?track=DP&project=\d+$/);
  await expect(mine).toHaveCount(3);
  await trainer.getByLabel("Status").selectOption("APPROVED");
  await expect(trainer).toHaveURL(/status=APPROVED/);
  await expect(trainer.getByText("No submissions match these filters.")).toBeVisible();
  await checkPage(trainer, testInfo, "trainer-queue-empty");
  await trainer.reload();
  await expect(trainer.getByLabel("Status")).toHaveValue("APPROVED");
  await trainer.getByRole("link", { name: "Show everything waiting for review" }).click();
  await expect(trainer).toHaveURL(/\/trainer$/);

  // The PDF, shown inline (served inline as a PDF), with its download beside it.
  await trainer.getByRole("link", { name: `${name}: PDF insights report` }).click();
  await expect(trainer.getByRole("heading", { level: 1, name: "PDF insights report: attempt 1" })).toBeVisible();
  await expect(trainer.getByText(email)).toBeVisible();
  const viewer = trainer.locator('iframe[title="insights.pdf (PDF)"]');
  await expect(viewer).toBeVisible();
  const shown = await trainer.request.get((await viewer.getAttribute("src"))!);
  expect(shown.status()).toBe(200);
  expect(shown.headers()["content-type"]).toBe("application/pdf");
  expect(shown.headers()["content-disposition"]).toBe('inline; filename="insights.pdf"');
  expect(Buffer.from(await shown.body()).equals(firstDraft)).toBe(true);
  await expect(trainer.getByRole("link", { name: "Download insights.pdf" })).toHaveAttribute("href", /^http/);
  await checkPage(trainer, testInfo, "trainer-submission", PDF_SHOWN);

  // Changes requested: feedback is required, and the decision is confirmed before it is sent.
  await trainer.getByRole("radio", { name: /^Request changes/ }).check();
  await trainer.getByRole("button", { name: "Review…" }).click();
  await expect(trainer.getByText("Say what the student should change.")).toBeVisible();
  await expect(trainer.getByRole("dialog")).toHaveCount(0);
  const feedback = "Add the KPI chart and say which region to act on first.";
  await trainer.getByRole("textbox", { name: /Feedback/ }).fill(feedback);
  await trainer.getByRole("button", { name: "Review…" }).click();
  const sendBack = trainer.getByRole("dialog", { name: "Send this attempt back?" });
  await expect(sendBack).toContainText(feedback);
  await checkPage(trainer, testInfo, "trainer-review-confirm", PDF_SHOWN);
  await sendBack.getByRole("button", { name: "Request changes" }).click();
  await expect(trainer.getByRole("status").filter({ hasText: "Review sent" })).toContainText(
    `Changes requested — ${name} will see your feedback and can submit again.`,
  );
  await checkPage(trainer, testInfo, "trainer-review-outcome", PDF_SHOWN);

  // The link and the repository (at its pinned commit) approved: project 1 is not finished yet.
  await openFromQueue(trainer, name, "Superset dashboard URL");
  await expect(trainer.getByRole("link", { name: "https://superset.example.com/superset/dashboard/7/" })).toBeVisible();
  await approve(trainer, /Approved — the project is not finished yet/);
  await openFromQueue(trainer, name, "SQL queries repository");
  await expect(trainer.getByRole("link", { name: COMMIT.slice(0, 12) })).toHaveAttribute("href", `https://github.com/rita-review/sales-kpis/tree/${COMMIT}`);
  await approve(trainer, /Approved — the project is not finished yet/);

  // The student reads the feedback and hands in a new PDF.
  await student.reload();
  const report = student.getByRole("article").filter({ has: student.getByRole("heading", { name: "PDF insights report" }) });
  await expect(report.getByText("Your trainer's feedback")).toBeVisible();
  await expect(report.getByText(feedback).first()).toBeVisible();
  await expect(report.getByText("Changes requested").first()).toBeVisible();
  await submitPdf(student, pdf(`Insights by ${name}: with the KPI chart`), "insights-v2.pdf");

  // The trainer sees both attempts side by side, the earlier one with its feedback, and approves.
  await openFromQueue(trainer, name, "PDF insights report");
  await expect(trainer.getByRole("heading", { level: 1, name: "PDF insights report: attempt 2" })).toBeVisible();
  await expect(trainer.locator('iframe[title="insights-v2.pdf (PDF)"]')).toBeVisible();
  const earlier = trainer.getByRole("article", { name: "Attempt 1" });
  await expect(earlier).toContainText(feedback);
  await expect(earlier.getByRole("link", { name: "Open attempt 1" })).toBeVisible();
  const [current, previous] = [await trainer.locator("article").first().boundingBox(), await earlier.boundingBox()];
  expect(previous!.x, "the attempts side by side at 1280 px").toBeGreaterThan(current!.x + current!.width - 1);
  await checkPage(trainer, testInfo, "trainer-submission-attempt-2", PDF_SHOWN);
  await approve(trainer, new RegExp(`Approved — project 2 unlocked for ${name}\\.`));
  await checkPage(trainer, testInfo, "trainer-approved", PDF_SHOWN);

  // Nothing of hers waits any more; her page says project 2.
  await trainer.getByRole("link", { name: "Review queue" }).first().click();
  await expect(trainer.getByRole("heading", { level: 1, name: "Review queue" })).toBeVisible();
  await expect(trainer.getByRole("listitem").filter({ hasText: name })).toHaveCount(0);
  await trainer.getByRole("link", { name: "My students" }).first().click();
  await expect(trainer.getByRole("heading", { level: 1, name: "My students" })).toBeVisible();
  const card = trainer.getByRole("listitem", { name });
  await expect(card).toContainText("Project 2:");
  await expect(card).toContainText("1 of 3 projects approved");
  await expect(card).not.toContainText("waiting for review");
  await checkPage(trainer, testInfo, "trainer-students");

  // The student sees project 1 approved and project 2 open to start.
  await student.goto("/dashboard");
  await expect(student.getByRole("link", { name: /Open project 2/ })).toBeVisible();

  expect(studentErrors).toEqual([]);
  expect(trainerErrors).toEqual([]);
});
