import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router";
import { MantineProvider } from "@mantine/core";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import "@mantine/core/styles.css";
import "./app.css";
import { App } from "./App";
import { theme } from "./theme";
import { AuthProvider } from "./auth";
import { ApiError } from "./api/errors";

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // The client already retries 503s and network failures with backoff; an API refusal is final.
      retry: (count, error) => !(error instanceof ApiError && error.status > 0) && count < 1,
      staleTime: 10_000,
      refetchOnWindowFocus: false,
    },
  },
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <MantineProvider theme={theme}>
      <QueryClientProvider client={queryClient}>
        <BrowserRouter>
          <AuthProvider>
            <App />
          </AuthProvider>
        </BrowserRouter>
      </QueryClientProvider>
    </MantineProvider>
  </StrictMode>,
);
