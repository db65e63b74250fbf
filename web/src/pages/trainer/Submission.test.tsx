import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setAccessToken } from "../../api/session";
import { AuthProvider } from "../../auth";
import { outcomeWords, Submission } from "./Submission";

const ID = "5f0c3c1e-3a51-4c36-9a43-1f7c1d2a9b10";
const DETAIL = {
  id: ID,
  student_id: "s-1",
  student_name: "Ada Lovelace",
  student_email: "ada@example.com",
  project_id: 11,
  project_number: 1,
  project_title: "Sales insights",
  deliverable_id: 31,
  deliverable_title: "Insights report",
  deliverable_type: "FILE",
  attempt: 2,
  status: "PENDING",
  submission_url: null,
  commit_sha: null,
  submission_text: null,
  file_key: "submissions/s-1/31/report.pdf",
  file_name: "report.pdf",
  file_size: 2048,
  file_content_type: "application/pdf",
  file_url: "https://files.example.com/report.pdf?download",
  file_url_expires_in: 300,
  file_view_url: "https://files.example.com/report.pdf?inline",
  submitted_at: "2026-03-10T10:00:00Z",
  feedback: null,
  reviewed_by: null,
  reviewed_at: null,
  earlier_attempts: [
    {
      id: "7d1f7a52-93a8-4b1e-8d5e-0d0c2f6b1a11",
      attempt: 1,
      status: "CHANGES_REQUESTED",
      submitted_at: "2026-03-08T10:00:00Z",
      submission_url: null,
      commit_sha: null,
      submission_text: null,
      file_name: "draft.pdf",
      feedback: "Add the KPI chart.",
      reviewed_by: "t-1",
      reviewed_at: "2026-03-09T10:00:00Z",
    },
  ],
};

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** The API as the page sees it: the profile, the submission, and the review (recorded). */
function stubApi(role: "trainer" | "student", review: (body: Record<string, unknown>) => Response) {
  const reviews: Record<string, unknown>[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (request: Request) => {
      const path = new URL(request.url).pathname;
      if (path === "/api/auth/user/") return json({ id: "t-1", name: "Tess Trainer", email: "t@example.com", role, privacy_accepted: true });
      if (path === `/api/trainer/submissions/${ID}/`) return json(DETAIL);
      if (path === `/api/trainer/submissions/${ID}/review/` && request.method === "POST") {
        const body = (await request.json()) as Record<string, unknown>;
        reviews.push(body);
        return review(body);
      }
      return json({ error: { code: "not_found", message: "no" } }, 404);
    }),
  );
  return reviews;
}

function renderPage() {
  return render(
    <MantineProvider>
      <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
        <MemoryRouter initialEntries={[`/trainer/submissions/${ID}`]}>
          <AuthProvider>
            <Routes>
              <Route path="/trainer/submissions/:id" element={<Submission />} />
            </Routes>
          </AuthProvider>
        </MemoryRouter>
      </QueryClientProvider>
    </MantineProvider>,
  );
}

const result = (status: string, extra: Record<string, unknown> = {}) => ({
  id: ID,
  student_id: "s-1",
  project_id: 11,
  deliverable_id: 31,
  attempt: 2,
  status,
  feedback: null,
  reviewed_by: "t-1",
  reviewed_at: "2026-03-10T12:00:00Z",
  submitted_at: "2026-03-10T10:00:00Z",
  project_status: "changes_requested",
  unlocked_project_id: null,
  unlocked_project_number: null,
  unlocked_project_title: null,
  track_completed: false,
  ...extra,
});

describe("the submission review page", () => {
  beforeEach(() => setAccessToken("token"));
  afterEach(() => {
    vi.unstubAllGlobals();
    setAccessToken(null);
  });

  it("shows the PDF inline, the earlier attempt with its feedback, and the download", async () => {
    stubApi("trainer", () => json(result("APPROVED")));
    renderPage();
    const frame = await screen.findByTitle("report.pdf (PDF)");
    expect(frame).toHaveAttribute("src", DETAIL.file_view_url);
    expect(screen.getByRole("link", { name: "Download report.pdf" })).toHaveAttribute("href", DETAIL.file_url);
    const earlier = screen.getByRole("article", { name: "Attempt 1" });
    expect(within(earlier).getByText("Add the KPI chart.")).toBeInTheDocument();
    expect(within(earlier).getByRole("link", { name: "Open attempt 1" })).toHaveAttribute("href", `/trainer/submissions/${DETAIL.earlier_attempts[0]!.id}`);
  });

  it("asks for feedback before changes can be requested, then confirms and says what happened", async () => {
    const reviews = stubApi("trainer", (body) => json(result("CHANGES_REQUESTED", { feedback: body.feedback })));
    renderPage();
    await userEvent.click(await screen.findByRole("radio", { name: /Request changes/ }));
    await userEvent.click(screen.getByRole("button", { name: "Review…" }));
    expect(await screen.findByText("Say what the student should change.")).toBeInTheDocument();
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();

    await userEvent.type(screen.getByRole("textbox", { name: /Feedback/ }), "  Label the axes.  ");
    await userEvent.click(screen.getByRole("button", { name: "Review…" }));
    const dialog = await screen.findByRole("dialog", { name: "Send this attempt back?" });
    expect(reviews).toEqual([]); // nothing sent before the confirmation
    await userEvent.click(within(dialog).getByRole("button", { name: "Request changes" }));
    expect(await screen.findByText(/Changes requested — Ada Lovelace will see your feedback/)).toBeInTheDocument();
    expect(reviews).toEqual([{ decision: "request_changes", feedback: "Label the axes." }]);
  });

  it("approves after the confirmation and names the project it unlocked", async () => {
    const reviews = stubApi("trainer", () =>
      json(result("APPROVED", { project_status: "approved", unlocked_project_id: 12, unlocked_project_number: 2, unlocked_project_title: "Forecasting" })),
    );
    renderPage();
    await userEvent.click(await screen.findByRole("radio", { name: /Approve/ }));
    await userEvent.click(screen.getByRole("button", { name: "Review…" }));
    const dialog = await screen.findByRole("dialog", { name: "Approve this attempt?" });
    await userEvent.click(within(dialog).getByRole("button", { name: "Approve" }));
    expect(await screen.findByText("Approved — project 2 unlocked for Ada Lovelace.")).toBeInTheDocument();
    expect(reviews).toEqual([{ decision: "approve", feedback: null }]);
    // The page's own status follows the decision (the detail is not fetched again).
    expect(screen.getAllByText("Approved")).toHaveLength(2); // the summary's and the attempt's badges
    expect(screen.queryByText("Waiting for review")).not.toBeInTheDocument();
  });

  it("says in plain words when the attempt can no longer be reviewed", async () => {
    stubApi("trainer", () => json({ error: { code: "not_reviewable", message: "This submission is decided (APPROVED)." } }, 409));
    renderPage();
    await userEvent.click(await screen.findByRole("radio", { name: /Approve/ }));
    await userEvent.click(screen.getByRole("button", { name: "Review…" }));
    const dialog = await screen.findByRole("dialog");
    await userEvent.click(within(dialog).getByRole("button", { name: "Approve" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("already reviewed, or the student has submitted a newer one");
  });

  it("shows a student a plain not-allowed page", async () => {
    stubApi("student", () => json(result("APPROVED")));
    renderPage();
    expect(await screen.findByRole("heading", { name: "Not allowed" })).toBeInTheDocument();
    expect(screen.queryByTitle("report.pdf (PDF)")).not.toBeInTheDocument();
  });
});

describe("the review's outcome in words", () => {
  it.each([
    [{ status: "APPROVED", project_status: "approved", unlocked_project_number: null, track_completed: true }, "Approved — Ada has completed the track."],
    [{ status: "APPROVED", project_status: "submitted", unlocked_project_number: null, track_completed: false }, "Approved — the project is not finished yet: other deliverables of the project are waiting for review."],
    [{ status: "APPROVED", project_status: "in_progress", unlocked_project_number: null, track_completed: false }, "Approved — the project is not finished yet: other deliverables of the project are still to be submitted."],
  ] as const)("%o", (r, words) => {
    expect(outcomeWords(r, "Ada")).toBe(words);
  });
});
