// The access token lives in memory only (docs/principles.md §12): a reload restores the session from the
// HttpOnly refresh cookie, which no script can read.
type Listener = (signedIn: boolean) => void;

let accessToken: string | null = null;
// Whether the last sign-out was the person's own (the app then goes home, not to the sign-in page).
let signedOutOnPurpose = false;
let refreshing: Promise<string | null> | null = null;
const listeners = new Set<Listener>();

/** The auth function's readable hint cookie: a refresh cookie exists, so a session can be restored
 * (without it, asking would only earn a 401). */
export function hasSessionHint(): boolean {
  return document.cookie.split(";").some((part) => part.trim() === "apranova_session=1");
}

export function getAccessToken(): string | null {
  return accessToken;
}

export function setAccessToken(token: string | null, options: { onPurpose?: boolean } = {}): void {
  signedOutOnPurpose = token === null && options.onPurpose === true;
  const changed = (token === null) !== (accessToken === null);
  accessToken = token;
  if (changed) listeners.forEach((listener) => listener(token !== null));
}

export function wasSignedOutOnPurpose(): boolean {
  return signedOutOnPurpose;
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** A new access token from the refresh cookie. However many requests got a 401 at once, one
 * refresh is in flight and they all wait for it. */
export function refreshAccessToken(fetcher: typeof fetch = fetch): Promise<string | null> {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const response = await fetcher("/api/auth/token/refresh/", {
          method: "POST",
          credentials: "same-origin",
          headers: { "content-type": "application/json" },
          body: "{}",
        });
        if (!response.ok) {
          setAccessToken(null);
          return null;
        }
        const body = (await response.json()) as { access: string };
        setAccessToken(body.access);
        return body.access;
      } catch {
        return null;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}
