/**
 * stan-ts and the official Go client (stan.go v0.10.4, through interop/go) on one server, in
 * both server modes: see foreign-clients.ts for the suite. Skips when interop/build.sh has not
 * built the tool.
 */
import { interopTool } from "@stan-ts/testing";
import { describeInterop } from "./foreign-clients.js";

describeInterop(interopTool("go"));
