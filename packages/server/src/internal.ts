/**
 * `@stan-ts/server/internal`: what this repository's own test harness needs and users do not.
 * Not part of the public API: not in the published package's exports, and it may change in
 * any release.
 *
 * @internal
 * @packageDocumentation
 */

export { crashServer } from "./server.js";
