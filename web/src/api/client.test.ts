import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RETRY_DELAYS_MS, onRetrying, sessionFetch, unwrap, onConsentRequired } from "./client";
import { ApiError } from "./errors";
import { getAccessToken, setAccessToken } from "./session";

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

describe("sessionFetch", () => {
  beforeEach(() => setAccessToken("old"));
  afterEach(() => {
    setAccessToken(null);
    vi.useRealTimers();
  });

  it("refreshes once for many requests that get a 401, then retries each with the new token", async () => {
    let refreshes = 0;
    const base = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = input instanceof Request ? input : new Request(String(new URL(String(input), "http://app")), init);
      if (request.url.endsWith("/api/auth/token/refresh/")) {
        refreshes++;
        await new Promise((r) => setTimeout(r, 10));
        return json(200, { access: "new", refresh: "r", expires_in: 900 });
      }
      return request.headers.get("Authorization") === "Bearer new" ? json(200, { ok: true }) : json(401, {});
    });
    const fetcher = sessionFetch(base as typeof fetch);
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map(() => fetcher(new Request("http://app/api/auth/user/"))),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(refreshes).toBe(1);
    expect(getAccessToken()).toBe("new");
  });

  it("signs out when the refresh is refused", async () => {
    const base = vi.fn(async () => json(401, { error: { code: "token_not_valid" } }));
    const response = await sessionFetch(base as unknown as typeof fetch)(new Request("http://app/api/auth/user/"));
    expect(response.status).toBe(401);
    expect(getAccessToken()).toBeNull();
  });

  it("retries a read on 503 with backoff and says so meanwhile", async () => {
    vi.useFakeTimers();
    const states: boolean[] = [];
    const off = onRetrying((retrying) => states.push(retrying));
    let calls = 0;
    const base = vi.fn(async () => (++calls < 3 ? json(503, {}) : json(200, { items: [] })));
    const pending = sessionFetch(base as unknown as typeof fetch)(new Request("http://app/api/curriculum/tracks/"));
    await vi.advanceTimersByTimeAsync(RETRY_DELAYS_MS[0]! + RETRY_DELAYS_MS[1]!);
    const response = await pending;
    off();
    expect(response.status).toBe(200);
    expect(calls).toBe(3);
    expect(states).toEqual([true, true, false]);
  });

  it("does not repeat a POST that got a 503", async () => {
    const base = vi.fn(async () => json(503, {}));
    const response = await sessionFetch(base as unknown as typeof fetch)(new Request("http://app/api/auth/login/", { method: "POST" }));
    expect(response.status).toBe(503);
    expect(base).toHaveBeenCalledTimes(1);
  });
});

describe("unwrap", () => {
  it("turns an error body into plain words and field errors", async () => {
    const body = {
      error: { code: "validation_error", message: "x", details: [{ field: "body.email", message: "Not an email." }] },
      detail: "x",
    };
    const failure = unwrap(Promise.resolve({ error: body, response: new Response(null, { status: 422 }) }));
    await expect(failure).rejects.toBeInstanceOf(ApiError);
    const error = (await failure.catch((e: unknown) => e)) as ApiError;
    expect(error.message).toBe("Some fields need attention.");
    expect(error.fields).toEqual({ email: "Not an email." });
  });

  it("raises the consent prompt when the API says consent_required", async () => {
    const asked = vi.fn();
    const off = onConsentRequired(asked);
    const body = { error: { code: "consent_required", message: "m", details: [] }, detail: "m" };
    await unwrap(Promise.resolve({ error: body, response: new Response(null, { status: 403 }) })).catch(() => undefined);
    off();
    expect(asked).toHaveBeenCalledOnce();
  });

  it("says a network failure in plain words", async () => {
    const error = (await unwrap(Promise.reject(new TypeError("Failed to fetch"))).catch((e: unknown) => e)) as ApiError;
    expect(error.code).toBe("network_error");
    expect(error.message).toMatch(/could not reach/);
  });
});
