import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@stan-ts/source"] },
  ssr: { resolve: { conditions: ["@stan-ts/source"] } },
  test: { name: "examples", include: ["test/**/*.test.ts"], testTimeout: 60_000 },
});
