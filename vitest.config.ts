import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

const shared = {
  resolve: { conditions: ["@stan-ts/source"] },
  ssr: { resolve: { conditions: ["@stan-ts/source"] } },
};

export default defineConfig({
  ...shared,
  test: {
    reporters: ["default", ["json", { outputFile: "test-results.json" }]],
    // Most test time is waiting on servers in child processes, so two test files at a time
    // halve the suite's time even on 2 cores (vitest's default there would be one).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: ["packages/*/vitest.config.ts", "examples/vitest.config.ts"],
  },
});
