// The library (and the harness's internal entry, kept out of the published exports) as ESM +
// CJS with declarations; the `stan-server` bin as ESM only (package.json
// `bin` points at dist/bin.js, and the bin reads its version through import.meta.url, which a
// CJS build would leave empty).
import { rmSync } from "node:fs";
import { defineConfig, type Options } from "tsup";

// the two builds run in parallel, so neither may use `clean`
rmSync(new URL("./dist", import.meta.url), { recursive: true, force: true });

const shared: Options = { sourcemap: true, target: "node20" };

export default defineConfig([
  { ...shared, entry: ["src/index.ts", "src/internal.ts"], format: ["esm", "cjs"], dts: true },
  { ...shared, entry: ["src/bin.ts"], format: ["esm"] },
]);
