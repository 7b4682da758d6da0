// Builds the UI bundle into crates/plumb-server/ui/ (committed; the binary embeds it, so a
// fresh clone needs only cargo). `node build.mjs --check` rebuilds into a temporary folder and
// fails when the result differs from the committed files (the test command runs it).
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dest = join(here, "..", "crates", "plumb-server", "ui");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "plumb-ui-")) : dest;
mkdirSync(out, { recursive: true });

await esbuild.build({
  entryPoints: [join(here, "src", "main.jsx")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "eof",
  outfile: join(out, "app.js"),
  logLevel: "warning",
});

// index.html names the assets with a content hash, so a new binary's browsers load new ones.
const hash = (f) => createHash("sha256").update(readFileSync(join(out, f))).digest("hex").slice(0, 12);
const html = readFileSync(join(here, "src", "index.html"), "utf8")
  .replace("{{css}}", `/static/app.css?v=${hash("app.css")}`)
  .replace("{{js}}", `/static/app.js?v=${hash("app.js")}`);
writeFileSync(join(out, "index.html"), html);

if (check) {
  const differ = readdirSync(out).filter(
    (f) => readFileSync(join(out, f)).compare(readFileSync(join(dest, f))) !== 0,
  );
  if (differ.length) {
    console.error(`ui: the committed bundle differs from its sources: ${differ.join(", ")}; run: (cd ui && npm ci && npm run build)`);
    process.exit(1);
  }
  console.log("ui: the committed bundle matches its sources");
}
