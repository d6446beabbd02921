import { defineConfig } from "vitest/config";

/**
 * `pnpm soak`: the full-size fault runs, outside the normal suite: a 60 s soak with random
 * faults (SOAK_SECONDS, SOAK_SEED to change or replay) and the 1,000,000-message backlog.
 */
export default defineConfig({
  root: import.meta.dirname,
  resolve: { conditions: ["@stan-ts/source"] },
  ssr: { resolve: { conditions: ["@stan-ts/source"] } },
  test: {
    name: "client-soak",
    include: ["test/fault/soak.test.ts", "test/fault/backlog.test.ts"],
    env: { STAN_SOAK: "1" },
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 60_000,
  },
});
