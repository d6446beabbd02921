// Same output as `tsup src/index.ts --format esm,cjs --dts --sourcemap --target node20`, except
// that the CJS build bundles p-queue. p-queue 9 is ESM-only: `require()` of it works on
// Node >= 20.19 (require(esm)), but the CJS interop turns `import PQueue from "p-queue"` into
// `require("p-queue").default`-with-Node-semantics, which is the module namespace, not the class
// (`new` then throws "is not a constructor"), and Node < 20.19 cannot require it at all.
// Bundling it (with p-timeout and eventemitter3, all MIT) into dist/index.cjs avoids both; the
// ESM build keeps p-queue an ordinary dependency. Their licence texts ship next to the bundle.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { defineConfig, type Options } from "tsup";

const BUNDLED_IN_CJS = ["p-queue", "p-timeout", "eventemitter3"];
const NOTICES = "dist/index.cjs.LICENSES.txt";

// the two builds run in parallel, so neither may use `clean`
rmSync(new URL("./dist", import.meta.url), { recursive: true, force: true });

/** The directory of an installed package (p-timeout and eventemitter3 as p-queue sees them). */
function packageDir(name: string): string {
  const fromQueue = createRequire(createRequire(import.meta.url).resolve("p-queue"));
  let dir = dirname(fromQueue.resolve(name));
  while (!existsSync(join(dir, "package.json")) || !dir.endsWith(name)) dir = dirname(dir);
  return dir;
}

function writeNotices(): void {
  const parts = BUNDLED_IN_CJS.map((name) => {
    const dir = packageDir(name);
    const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
      version: string;
    };
    const licence = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
    if (!licence) throw new Error(`no licence file in ${dir}`);
    return `${name}@${version}\n\n${readFileSync(join(dir, licence), "utf8").trim()}\n`;
  });
  writeFileSync(
    NOTICES,
    `dist/index.cjs bundles these packages:\n\n${parts.join(`\n${"-".repeat(72)}\n\n`)}`,
  );
}

const shared: Options = {
  entry: ["src/index.ts"],
  dts: true,
  sourcemap: true,
  target: "node20",
};

export default defineConfig([
  { ...shared, format: ["esm"] },
  {
    ...shared,
    format: ["cjs"],
    noExternal: BUNDLED_IN_CJS,
    banner: {
      js: `/*! Bundles ${BUNDLED_IN_CJS.join(", ")} (MIT): see ./index.cjs.LICENSES.txt */`,
    },
    onSuccess: async () => writeNotices(),
  },
]);
