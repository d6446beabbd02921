// `pnpm check:packages`: packs each public package as it would be published and runs
// arethetypeswrong (types under every module resolution; the library behind `attw --pack`, used
// in-process so TypeScript loads once) and publint (package.json and files) on the tarball. Any
// problem, warning or suggestion fails. Needs `pnpm build` first.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkPackage, createPackageFromTarballData } from "@arethetypeswrong/core";
import { problemKindInfo } from "@arethetypeswrong/core/problems";
import { packPublicPackages } from "@stan-ts/testing";
import { publint } from "publint";
import { formatMessage } from "publint/utils";

/**
 * What publint does not check: no workspace-only condition (`@stan-ts/source`) left in the
 * published `exports`, and every path `exports` or `bin` names is in the tarball.
 */
function exportsProblems(value: unknown, files: ReadonlySet<string>, at = "exports"): string[] {
  if (typeof value === "string") {
    const path = value.replace(/^\.\//, "");
    return files.has(path) ? [] : [`${at} -> ${value} is not in the tarball`];
  }
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) =>
    k.startsWith("@stan-ts/")
      ? [`${at}["${k}"]: a workspace-only condition is published`]
      : exportsProblems(v, files, `${at}["${k}"]`),
  );
}

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dest = mkdtempSync(join(tmpdir(), "stan-ts-check-"));
let failures = 0;
try {
  for (const p of await packPublicPackages(root, dest)) {
    const problems: string[] = [];
    const tarball = readFileSync(p.tarball);
    const types = await checkPackage(createPackageFromTarballData(new Uint8Array(tarball)));
    if (!types.types) problems.push("attw: the package has no types");
    else {
      for (const problem of types.problems) {
        const where =
          "entrypoint" in problem ? ` (${problem.entrypoint}, ${problem.resolutionKind})` : "";
        problems.push(`attw: ${problemKindInfo[problem.kind].title}${where}`);
      }
    }
    const { messages, pkg } = await publint({
      pack: {
        tarball: tarball.buffer.slice(tarball.byteOffset, tarball.byteOffset + tarball.length),
      },
      level: "suggestion",
      strict: true,
    });
    for (const m of messages) {
      problems.push(`publint ${m.type}: ${formatMessage(m, pkg) ?? m.code}`);
    }
    const files = new Set(p.files);
    const manifest = pkg as { exports?: unknown; bin?: unknown };
    problems.push(...exportsProblems(manifest.exports, files));
    problems.push(...exportsProblems(manifest.bin ?? {}, files, "bin"));
    failures += problems.length;
    console.log(`${problems.length === 0 ? "ok  " : "FAIL"} ${p.name}@${p.version}`);
    for (const line of problems) console.log(`     ${line.replaceAll("\n", "\n     ")}`);
  }
} finally {
  rmSync(dest, { recursive: true, force: true });
}
if (failures > 0) {
  console.log(`${failures} problem(s)`);
  process.exitCode = 1;
} else {
  console.log("attw and publint: no problems");
}
