import createClient from "openapi-fetch";
import type { paths } from "./schema";
import { ApiError, type ErrorBody } from "./errors";
import { getAccessToken, refreshAccessToken } from "./session";

// Retries of reads on 503 and network failures, with backoff; the page says so meanwhile.
export const RETRY_DELAYS_MS = [400, 1200, 3000];
type RetryListener = (retrying: boolean) => void;
const retryListeners = new Set<RetryListener>();
export function onRetrying(listener: RetryListener): () => void {
  retryListeners.add(listener);
  return () => retryListeners.delete(listener);
}
function announce(retrying: boolean): void {
  retryListeners.forEach((listener) => listener(retrying));
}

type ConsentListener = () => void;
const consentListeners = new Set<ConsentListener>();
export function onConsentRequired(listener: ConsentListener): () => void {
  consentListeners.add(listener);
  return () => consentListeners.delete(listener);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const NO_REFRESH = ["/api/auth/login/", "/api/auth/token/refresh/"];

function withToken(request: Request, token: string | null): Request {
  const next = request.clone();
  if (token) next.headers.set("Authorization", `Bearer ${token}`);
  return next;
}

/** fetch with the session: the in-memory access token, one shared refresh on a 401, and retries
 * of idempotent requests when the service is briefly unavailable. */
export function sessionFetch(base: typeof fetch = (...args) => fetch(...args)) {
  return async (input: Request): Promise<Response> => {
    const idempotent = input.method === "GET" || input.method === "HEAD";
    const send = async (token: string | null): Promise<Response> => {
      for (let attempt = 0; ; attempt++) {
        try {
          const response = await base(withToken(input, token));
          if (response.status !== 503 || !idempotent || attempt >= RETRY_DELAYS_MS.length) {
            if (attempt > 0) announce(false);
            return response;
          }
        } catch (error) {
          if (!idempotent || attempt >= RETRY_DELAYS_MS.length) {
            if (attempt > 0) announce(false);
            throw error;
          }
        }
        announce(true);
        await sleep(RETRY_DELAYS_MS[attempt]!);
      }
    };
    const token = getAccessToken();
    const response = await send(token);
    const path = new URL(input.url, "http://x").pathname;
    if (response.status === 401 && token && !NO_REFRESH.includes(path)) {
      const fresh = await refreshAccessToken(base);
      if (fresh) return send(fresh);
    }
    return response;
  };
}

// The page's own origin: the API is served beside the app (docs/principles.md §12, one origin).
export const api = createClient<paths>({ baseUrl: window.location.origin, fetch: sessionFetch(), credentials: "same-origin" });

/** The data of an openapi-fetch answer, or an ApiError with the plain words for its code. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch {
    throw new ApiError(0, undefined);
  }
  if (result.error !== undefined || !result.response.ok) {
    const error = new ApiError(result.response.status, result.error as ErrorBody | undefined);
    if (error.code === "consent_required") consentListeners.forEach((listener) => listener());
    throw error;
  }
  return result.data as T;
}
