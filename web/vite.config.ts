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
  server: { proxy: { "/api": "http://127.0.0.1:8765" } },
  test: { include: ["src/**/*.test.ts", "src/**/*.test.tsx"], environment: "node" },
});
