/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// One origin (docs/principles.md §12): the web server proxies /api to the local API, as CloudFront routes
// /api/* to the HTTP API in AWS. The local stack passes its API's address in API_URL.
const api = process.env.API_URL ?? "http://127.0.0.1:3000";
const proxy = { "/api": { target: api, changeOrigin: false } };

export default defineConfig({
  plugins: [react()],
  server: { host: "127.0.0.1", port: 5173, strictPort: true, proxy },
  preview: { host: "127.0.0.1", port: 5173, strictPort: true, proxy },
  build: { manifest: true, sourcemap: false, chunkSizeWarningLimit: 600 },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test-setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    css: false,
  },
});
