// The console is built into one folder that CMake embeds into the granary binary
// (src/granary/console/CMakeLists.txt); `granary ui` serves it from memory.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    // Everything in files (no inline data: URLs for scripts) so the page runs under a strict
    // Content-Security-Policy; no source maps in the binary.
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2020',
    reportCompressedSize: false,
  },
});
