/**
 * The dashboard's build: `npm run build -w @celfarm/dashboard` writes apps/dashboard/dist, which
 * the API serves at `/`. `npm run dev -w @celfarm/dashboard` serves it with hot reload and sends
 * `/v1` to the API at CELFARM_API (default http://127.0.0.1:8080).
 */
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true },
  server: {
    proxy: { '/v1': { target: process.env.CELFARM_API ?? 'http://127.0.0.1:8080', changeOrigin: false } },
  },
});
