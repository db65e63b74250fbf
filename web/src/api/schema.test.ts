import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect, it } from "vitest";

// The typed client is only true while its types are the committed OpenAPI's: `make openapi`
// regenerates both.
it("schema.d.ts is generated from docs/openapi.json (run `make openapi`)", () => {
  const web = resolve(__dirname, "../..");
  const out = join(mkdtempSync(join(tmpdir(), "schema-")), "schema.d.ts");
  execFileSync(process.execPath, [join(web, "node_modules/openapi-typescript/bin/cli.js"), "../docs/openapi.json", "-o", out], {
    cwd: web,
    stdio: "pipe",
  });
  expect(readFileSync(out, "utf8") === readFileSync(join(web, "src/api/schema.d.ts"), "utf8")).toBe(true);
}, 30_000);
