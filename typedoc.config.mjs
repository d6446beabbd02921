// API reference for the public packages: `pnpm docs` writes it to docs/api (git-ignored).
// Warnings are errors, so an export without TSDoc or a broken {@link} fails CI.
import { OptionDefaults } from "typedoc";

const blockTags = [...OptionDefaults.blockTags, "@generated"];
// per package too: with entryPointStrategy "packages" the root values do not reach them
const validation = { notExported: true, invalidLink: true, notDocumented: true };
// every export (the top-level declarations of each package's index) must have TSDoc
const requiredToBeDocumented = ["Enum", "Variable", "Function", "Class", "Interface", "TypeAlias"];

/** @type {Partial<import("typedoc").TypeDocOptions>} */
const config = {
  name: "stan-ts",
  entryPointStrategy: "packages",
  entryPoints: [
    "packages/client",
    "packages/core",
    "packages/proto",
    "packages/server",
    "packages/cli",
    "packages/jetstream",
  ],
  packageOptions: {
    entryPoints: ["src/index.ts"],
    tsconfig: "../../tsconfig.json",
    blockTags,
    excludeInternal: true,
    disableSources: true,
    validation,
    requiredToBeDocumented,
  },
  blockTags,
  disableSources: true,
  out: "docs/api",
  readme: "README.md",
  treatWarningsAsErrors: true,
  validation,
  requiredToBeDocumented,
};

export default config;
