import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@stan-ts/source"] },
  ssr: { resolve: { conditions: ["@stan-ts/source"] } },
  test: {
    name: "jetstream",
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
