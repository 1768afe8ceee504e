import { defineConfig } from 'vite'

// The Python server serves dist/index.html at `/` and `/r/{room}`, and only
// dist/assets/* under `/assets`: every other built file must land in assets/.
// There is deliberately no public/ directory.
const backend = process.env.CODEMENTOR_DEV_BACKEND ?? 'http://127.0.0.1:8000'

export default defineConfig({
  base: '/',
  publicDir: false,
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      '/api': backend,
      '/ws': { target: backend.replace(/^http/, 'ws'), ws: true },
    },
  },
})
