import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The build lands inside the Python package: `runyard server` serves it (see server/webui.py).
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: process.env.RUNYARD_WEB_OUT ?? "../src/runyard/server/webui",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  // `npm run dev`: pages from Vite, the API from a runyard server (RUNYARD_API, default :8765)
  server: { proxy: { "/api": process.env.RUNYARD_API ?? "http://127.0.0.1:8765" } },
  test: { include: ["src/**/*.test.ts", "src/**/*.test.tsx"], environment: "node" },
});
