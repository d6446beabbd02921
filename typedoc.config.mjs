// API reference for what users import: `pnpm docs` writes it to docs/api (git-ignored).
// The two libraries an application imports are documented as APIs: `stan-ts` (which re-exports
// the error classes and types of @stan-ts/core, so each appears once) and `@stan-ts/server`.
// The `stan` command line is documented by its usage (packages/cli/README.md), not by the
// functions behind it; @stan-ts/core and @stan-ts/proto are internals of the SDK, left out.
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
  entryPoints: ["packages/client", "packages/server", "packages/jetstream"],
  projectDocuments: ["docs/cli.md"],
  // Two comments of re-exported core types name the engine's methods behind them; in the
  // reference those are the connection's status() and publishBatch().
  externalSymbolLinkMappings: {
    "@stan-ts/core": {
      "Session.onEvent": "#",
      "Session.sendBatch": "#",
    },
  },
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
