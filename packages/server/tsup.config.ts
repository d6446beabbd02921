// The library (and the harness's internal entry, kept out of the published exports) as ESM +
// CJS with declarations; the `stan-server` bin in two parts (for
// start-up): dist/bin.cjs, a small bundle (argument parsing, the nats-server launcher), and
// dist/bin-server.cjs, the engine with every dependency bundled in, which bin.cjs compiles
// through V8's code cache (src/code-cache.ts). One file instead of ~150 modules saves their
// resolution and reads; CommonJS because vm.Script (and so the code cache) takes scripts, not
// ES modules, and because a CommonJS entry spares Node 20 its ES module loader (19 fewer
// internal modules, ~25 ms less CPU on a loaded 2-core machine). `shims` gives bin.ts its
// import.meta.url.
import { rmSync } from "node:fs";
import { defineConfig, type Options } from "tsup";

// the builds run in parallel, so none may use `clean`
rmSync(new URL("./dist", import.meta.url), { recursive: true, force: true });

const shared: Options = { sourcemap: true, target: "node20" };

export default defineConfig([
  { ...shared, entry: ["src/index.ts", "src/internal.ts"], format: ["esm", "cjs"], dts: true },
  {
    ...shared,
    entry: ["src/bin.ts"],
    format: ["cjs"],
    // only the cluster-ID rule of @stan-ts/core, from its sources (side-effect free, so
    // the rest, protobuf included, is left out), not the whole client library at each start
    noExternal: ["@stan-ts/core"],
    esbuildOptions(o) {
      o.conditions = ["@stan-ts/source"];
    },
    shims: true,
    outExtension: () => ({ js: ".cjs" }),
  },
  {
    ...shared,
    entry: { "bin-server": "src/server.ts" },
    format: ["cjs"],
    noExternal: [/.*/],
    // whitespace and syntax only: names stay readable in stack traces
    minifyWhitespace: true,
    minifySyntax: true,
    outExtension: () => ({ js: ".cjs" }),
  },
]);
