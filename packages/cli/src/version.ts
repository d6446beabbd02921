import pkg from "../package.json" with { type: "json" };

/** The version of `@stan-ts/cli`, as in its package.json. */
export const VERSION: string = pkg.version;
