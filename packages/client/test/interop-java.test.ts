/**
 * stan-ts and the official Java client (java-nats-streaming 2.2.3, through interop/java) on one
 * server, in both server modes: see foreign-clients.ts for the suite. Java stands in for the
 * Python client, which cannot run on Python 3.11 (interop/python/README.md). Skips when
 * interop/build.sh has not built the tool.
 */
import { interopTool } from "@stan-ts/testing";
import { describeInterop } from "./foreign-clients.js";

describeInterop(interopTool("java"));
