import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setAccessToken } from "../../api/session";
import { AuthProvider } from "../../auth";
import { AdminArea } from "./Admin";

const REQUEST = {
  id: "0b7f4a0e-6a55-4f2e-9a55-3c3e0f0a1b22",
  payment_id: "c2b1a0e9-1d2c-4b3a-8f7e-6d5c4b3a2f10",
  user_id: "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
  reason: "Not for me.",
  amount_cents: 49900,
  currency: "usd",
  track: "DP",
  status: "PENDING",
  created_at: "2026-12-01T10:00:00Z",
  decided_at: null,
  decision_reason: null,
  stripe_refund_id: null,
};

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** The API as the refunds page sees it: the profile, the pending queue, and the decisions (recorded). */
function stubApi(role: "admin" | "student", decide: (path: string, body: Record<string, unknown>) => Response) {
  const decisions: { path: string; body: Record<string, unknown> }[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (request: Request) => {
      const url = new URL(request.url);
      if (url.pathname === "/api/auth/user/") return json({ id: "a-1", name: "Ann Admin", email: "a@example.com", role, privacy_accepted: true });
      if (url.pathname === "/api/admin/refund-requests/" && request.method === "GET") {
        const decided = decisions.length > 0;
        return json({ items: decided || url.searchParams.get("status") !== "PENDING" ? [] : [REQUEST], next_cursor: null });
      }
      if (url.pathname.startsWith(`/api/admin/refund-requests/${REQUEST.id}/`) && request.method === "POST") {
        const body = (await request.json()) as Record<string, unknown>;
        decisions.push({ path: url.pathname, body });
        return decide(url.pathname, body);
      }
      return json({ error: { code: "not_found", message: "no" } }, 404);
    }),
  );
  return decisions;
}

function renderAt(path: string) {
  return render(
    <MantineProvider>
      <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
        <MemoryRouter initialEntries={[path]}>
          <AuthProvider>
            <Routes>
              <Route path="/admin/*" element={<AdminArea />} />
            </Routes>
          </AuthProvider>
        </MemoryRouter>
      </QueryClientProvider>
    </MantineProvider>,
  );
}

// A page of the lazy admin area, rendered whole: generous time on a busy machine.
vi.setConfig({ testTimeout: 30_000 });

describe("refund decisions on the refunds page", () => {
  beforeEach(() => setAccessToken("token"));
  afterEach(() => {
    vi.unstubAllGlobals();
    setAccessToken(null);
  });

  it("rejects only with a reason, after the confirmation, and says what happened", async () => {
    const decisions = stubApi("admin", (_, body) => json({ ...REQUEST, status: "REJECTED", decision_reason: body.reason }));
    renderAt("/admin/refunds");
    await userEvent.click(await screen.findByRole("button", { name: "Reject the refund request of the student" }, { timeout: 20_000 }));
    const dialog = await screen.findByRole("dialog", { name: "Reject this refund request?" });
    await userEvent.click(within(dialog).getByRole("button", { name: "Reject the request" }));
    expect(await within(dialog).findByText("Give the reason for the student.")).toBeInTheDocument();
    expect(decisions).toEqual([]);

    await userEvent.type(within(dialog).getByRole("textbox", { name: /Reason/ }), "  More than half the course is done.  ");
    await userEvent.click(within(dialog).getByRole("button", { name: "Reject the request" }));
    expect(await screen.findByText(/Refund request of the student rejected/)).toBeInTheDocument();
    expect(decisions).toEqual([{ path: `/api/admin/refund-requests/${REQUEST.id}/reject/`, body: { reason: "More than half the course is done." } }]);
  });

  it("approves after naming the amount, and keeps the dialog open with the error in words when refused", async () => {
    const decisions = stubApi("admin", () => json({ error: { code: "already_decided", message: "decided" } }, 409));
    renderAt("/admin/refunds");
    await userEvent.click(await screen.findByRole("button", { name: "Approve the refund of $499.00 to the student" }, { timeout: 20_000 }));
    const dialog = await screen.findByRole("dialog", { name: "Approve this refund?" });
    expect(dialog).toHaveTextContent("$499.00 goes back to the student through Stripe");
    expect(dialog).toHaveTextContent("This cannot be undone.");
    await userEvent.click(within(dialog).getByRole("button", { name: "Refund $499.00" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("already decided");
    expect(decisions).toEqual([{ path: `/api/admin/refund-requests/${REQUEST.id}/approve/`, body: { note: null } }]);
  });

  it("shows anyone but an admin a plain not-allowed page and asks the API nothing else", async () => {
    stubApi("student", () => json({}));
    renderAt("/admin/refunds");
    expect(await screen.findByRole("heading", { name: "Not allowed" }, { timeout: 20_000 })).toBeInTheDocument();
    const asked = (fetch as unknown as { mock: { calls: [Request][] } }).mock.calls.map(([r]) => new URL(r.url).pathname);
    expect(asked.filter((p) => p.startsWith("/api/admin/"))).toEqual([]);
  });
});
