// TSDoc check of the packages the API reference leaves out (@stan-ts/core, @stan-ts/proto and
// the functions behind the `stan` command): `pnpm run docs` runs it after typedoc.config.mjs,
// with the same validation (warnings are errors), and writes nothing.
import config from "./typedoc.config.mjs";

/** @type {Partial<import("typedoc").TypeDocOptions>} */
const internal = {
  ...config,
  name: "stan-ts internals (checked, not published)",
  entryPoints: ["packages/core", "packages/proto", "packages/cli"],
  projectDocuments: [],
  externalSymbolLinkMappings: {},
  emit: "none",
};

export default internal;
