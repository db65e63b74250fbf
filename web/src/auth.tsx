import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Navigate, useLocation } from "react-router";
import { api, unwrap } from "./api/client";
import { getAccessToken, hasSessionHint, onSessionChange, refreshAccessToken, setAccessToken, wasSignedOutOnPurpose } from "./api/session";
import type { components } from "./api/schema";
import { Loading } from "./components/Loading";

export type Profile = components["schemas"]["Profile"];

interface Auth {
  ready: boolean;
  signedIn: boolean;
  signIn: (access: string) => void;
  signOut: () => Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

// A reload keeps the session: the refresh cookie gives a new access token. Asked for as soon as the
// app's code runs, while the page's own code is still loading.
const restoring: Promise<string | null> = typeof document !== "undefined" && hasSessionHint() ? refreshAccessToken() : Promise.resolve(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [ready, setReady] = useState(false);
  const [signedIn, setSignedIn] = useState(getAccessToken() !== null);

  useEffect(() => onSessionChange(setSignedIn), []);
  useEffect(() => {
    void restoring.finally(() => setReady(true));
  }, []);

  const signIn = useCallback(
    (access: string) => {
      queryClient.clear();
      setAccessToken(access);
    },
    [queryClient],
  );
  const signOut = useCallback(async () => {
    try {
      await api.POST("/api/auth/logout/", { body: {} });
    } finally {
      setAccessToken(null, { onPurpose: true });
      queryClient.clear();
    }
  }, [queryClient]);

  const value = useMemo(() => ({ ready, signedIn, signIn, signOut }), [ready, signedIn, signIn, signOut]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error("useAuth outside AuthProvider");
  return auth;
}

export function useProfile(options: { poll?: number | false } = {}) {
  const { signedIn } = useAuth();
  return useQuery({
    queryKey: ["me"],
    queryFn: () => unwrap(api.GET("/api/auth/user/")),
    enabled: signedIn,
    refetchInterval: options.poll ?? false,
  });
}

export function RequireAuth({ children }: { children: ReactNode }) {
  const { ready, signedIn } = useAuth();
  const location = useLocation();
  if (!ready) return <Loading label="Restoring your session" />;
  if (!signedIn) {
    if (wasSignedOutOnPurpose()) return <Navigate to="/" replace />;
    const next = encodeURIComponent(location.pathname + location.search);
    return <Navigate to={`/login?next=${next}`} replace />;
  }
  return <>{children}</>;
}
