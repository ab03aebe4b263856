import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // onnxruntime sessions and ffmpeg children are heavy: keep the 2-core machine responsive.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
