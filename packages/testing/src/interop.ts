// Where `bash interop/build.sh` put the other languages' client tools (interop/README.md), and
// how to start each, for the cross-language tests and the bench's Go column.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

/** The interop tools that interop/build.sh builds. */
export type InteropToolName = "go" | "java";

/** An interop tool: how to start it, or why it cannot be started. */
export interface InteropTool {
  name: InteropToolName;
  /** The client it drives, e.g. "Go (stan.go v0.10.4)". */
  label: string;
  /** The program to spawn. */
  command: string;
  /** Arguments before the tool's own flags (`-jar <file>` for Java). */
  prefix: string[];
  /** Set when the tool cannot run here: what is missing and how to get it. */
  missing?: string;
}

/** The folder interop/build.sh builds into: STAN_INTEROP_BIN, else /opt/stan-tools/interop. */
export function interopBin(): string {
  return process.env.STAN_INTEROP_BIN || "/opt/stan-tools/interop";
}

const BUILD_HINT = "run `bash interop/build.sh` (or set STAN_INTEROP_BIN to its output folder)";

/**
 * Finds an interop tool. Never throws: a tool that is not built (or, for Java, has no `java` to
 * run it) comes back with {@link InteropTool.missing} set, so callers can skip with the reason.
 */
export function interopTool(name: InteropToolName): InteropTool {
  if (name === "go") {
    const command = join(interopBin(), "stan-interop");
    const tool: InteropTool = { name, label: "Go (stan.go v0.10.4)", command, prefix: [] };
    return existsSync(command)
      ? tool
      : { ...tool, missing: `${command} is not built: ${BUILD_HINT}` };
  }
  const jar = join(interopBin(), "stan-interop-java.jar");
  const tool: InteropTool = {
    name,
    label: "Java (java-nats-streaming 2.2.3)",
    command: "java",
    prefix: ["-jar", jar],
  };
  if (!existsSync(jar)) return { ...tool, missing: `${jar} is not built: ${BUILD_HINT}` };
  if (spawnSync("java", ["-version"], { stdio: "ignore" }).status !== 0) {
    return { ...tool, missing: "no `java` on PATH to run the Java client tool" };
  }
  return tool;
}
