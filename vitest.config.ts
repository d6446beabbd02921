import { defineConfig } from "vitest/config";

const shared = {
  resolve: { conditions: ["@stan-ts/source"] },
  ssr: { resolve: { conditions: ["@stan-ts/source"] } },
};

export default defineConfig({
  ...shared,
  test: {
    reporters: ["default", ["json", { outputFile: "test-results.json" }]],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: ["packages/*/vitest.config.ts", "examples/vitest.config.ts"],
  },
});
