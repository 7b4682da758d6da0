// Browser tests: Debian's Chromium, driven by playwright-core, against the real plumb binary
// holding data the official mlflow client logged (seed.py). Screenshots go to
// target/ui-screenshots/. Needs PLUMB_BIN and PLUMB_PYTHON (a venv with mlflow); CHROMIUM
// defaults to /usr/bin/chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const shots = join(here, "..", "..", "target", "ui-screenshots");
let server, browser, page, base, seed, workdir;

const freePort = () =>
  new Promise((ok) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

async function waitHealthy(url) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("plumb did not start");
}

before(async () => {
  workdir = mkdtempSync(join(tmpdir(), "plumb-ui-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(process.env.PLUMB_BIN, ["server", "--port", String(port)], { cwd: workdir, stdio: ["ignore", "ignore", "inherit"] });
  await waitHealthy(base);
  seed = JSON.parse(
    execFileSync(process.env.PLUMB_PYTHON, [join(here, "seed.py")], {
      env: { ...process.env, MLFLOW_TRACKING_URI: base, TMPDIR: workdir },
      cwd: workdir,
    })
      .toString()
      .trim()
      .split("\n")
      .pop(),
  );
  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (e) => console.error("page error:", e));
});

after(async () => {
  await browser?.close();
  server?.kill();
  if (workdir) rmSync(workdir, { recursive: true, force: true });
});

// A fresh document per visit: a hash change alone keeps the page's state between tests.
async function visit(hashPath) {
  await page.goto("about:blank");
  await page.goto(`${base}/${hashPath}`);
}
const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
const rows = () => page.locator(".runs .body .row:not(.group)");

test("the experiments page lists experiments and searches them", async () => {
  await visit("");
  await page.getByRole("link", { name: "ui-demo" }).waitFor();
  assert.ok(await page.getByRole("link", { name: "other-experiment" }).isVisible());
  await shot("experiments");
  await page.getByLabel("Search experiments").fill("other");
  await page.getByRole("link", { name: "ui-demo" }).waitFor({ state: "detached" });
  assert.ok(await page.getByRole("link", { name: "other-experiment" }).isVisible());
  assert.match(page.url(), /q=other/, "the search is in the URL");
});

test("the runs table filters, sorts, groups and flags missing tags", async () => {
  await visit(`#/experiments/${seed.experiment_id}`);
  await page.locator(".runs .count").filter({ hasText: "40 runs" }).waitFor();
  await shot("runs");
  await page.getByLabel("Filter runs").fill("params.lr = '0.3'");
  await page.getByRole("button", { name: "Search" }).click();
  await page.locator(".runs .count").filter({ hasText: "10 runs" }).waitFor();
  const state = new URLSearchParams(new URL(page.url()).hash.split("?")[1]);
  assert.equal(state.get("filter"), "params.lr = '0.3'", "the filter is in the URL");
  // Sorting by accuracy (server-side), highest first.
  await page.getByLabel("Filter runs").fill("");
  await page.getByRole("button", { name: "Search" }).click();
  await page.locator(".runs .count").filter({ hasText: "40 runs" }).waitFor();
  await page.locator(".runs .head button", { hasText: "accuracy" }).click();
  await page.waitForFunction(() => location.hash.includes("DESC"));
  const firstName = await rows().first().locator(".name a").innerText();
  const best = await (await fetch(`${base}/ajax-api/2.0/mlflow/runs/get?run_id=${seed.best}`)).json();
  assert.equal(firstName, best.run.info.run_name);
  // Back returns to the unsorted view.
  await page.goBack();
  await page.waitForFunction(() => !location.hash.includes("DESC"));
  // Required tags: runs without `env` are flagged, and a filter shows only them.
  await page.getByText("Thresholds and required tags").click();
  await page.getByLabel("Required tags").fill("env");
  await page.getByRole("button", { name: "Set required tags" }).click();
  await page.locator(".flag").first().waitFor();
  await page.getByLabel("missing required tags").check();
  await page.locator(".runs .count").filter({ hasText: "4 runs" }).waitFor();
  await page.getByLabel("missing required tags").uncheck();
  // Grouping by env.
  await page.getByLabel("Group by tag").selectOption("env");
  await page.locator(".runs .row.group", { hasText: "production (16)" }).waitFor();
  await shot("runs-grouped");
});

test("a pinned baseline shows deltas and a threshold flags misses", async () => {
  await visit(`#/experiments/${seed.experiment_id}?sel=${seed.best}`);
  await page.locator(".runs .count").filter({ hasText: "40 runs" }).waitFor();
  await page.getByRole("button", { name: "Pin as baseline" }).click();
  await page.locator(".note", { hasText: "Baseline" }).waitFor();
  await page.locator(".runs small.down").first().waitFor();
  await page.getByText("Thresholds and required tags").click();
  await page.getByLabel("Threshold metric").selectOption("accuracy");
  await page.getByLabel("Threshold", { exact: true }).fill(">= 0.9");
  await page.getByRole("button", { name: "Set threshold" }).click();
  await page.locator(".runs .miss").first().waitFor();
  await shot("baseline");
  // Stored as experiment tags, visible through MLflow's API.
  const exp = await (await fetch(`${base}/ajax-api/2.0/mlflow/experiments/get?experiment_id=${seed.experiment_id}`)).json();
  const tags = Object.fromEntries(exp.experiment.tags.map((t) => [t.key, t.value]));
  assert.equal(tags["plumb.baseline_run"], seed.best);
  assert.equal(tags["plumb.threshold.accuracy"], ">= 0.9");
});

test("a run page draws its chart and previews artifacts", async () => {
  await visit(`#/runs/${seed.best}`);
  const canvas = page.locator(".chart canvas").first();
  await canvas.waitFor();
  const drawn = await canvas.evaluate((c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) painted++;
    return painted;
  });
  assert.ok(drawn > 500, `the chart painted ${drawn} pixels`);
  // Each metric's sparkline: its points, thinned to at most 64, drawn as one line.
  const spark = page.locator('svg.spark[aria-label^="accuracy"]');
  await page.waitForFunction(() => document.querySelector('svg.spark[aria-label^="accuracy"]')?.dataset.points);
  assert.equal(await spark.getAttribute("data-points"), "60");
  assert.ok((await spark.locator("polyline").getAttribute("points")).split(" ").length === 60);
  await page.getByRole("button", { name: "notes.txt" }).click();
  await page.locator("pre.text", { hasText: "hello from the best run" }).waitFor();
  await page.getByRole("button", { name: "config.json" }).click();
  await page.locator("pre.text", { hasText: '"threshold": 0.9' }).waitFor();
  await page.getByRole("button", { name: "data" }).click();
  await page.getByRole("button", { name: "importance.csv" }).click();
  await page.locator("table.csv th", { hasText: "feature" }).waitFor();
  await shot("run");
  await visit(`#/runs/${seed.best}?artifact=images/plumb-ui-dot.png`);
  const img = page.locator(".preview img");
  await img.waitFor();
  assert.ok(await img.evaluate((i) => i.complete && i.naturalWidth === 2));
  await visit(`#/runs/${seed.best}?artifact=model/MLmodel`);
  await page.locator("pre.text", { hasText: "flavors" }).waitFor();
});

test("compare shows the differing parameter and the charts", async () => {
  const [a, b] = [seed.runs[0], seed.runs[1]];
  await visit(`#/compare?runs=${a},${b}&diff=1`);
  await page.locator('tr.differs[data-key="lr"]').waitFor();
  assert.equal(await page.locator('tr[data-key="optimizer"]').count(), 0, "equal params hidden");
  await page.locator("canvas").first().waitFor();
  await shot("compare");
});

test("a model version's page links its run and logged model on one timeline", async () => {
  const post = (p, body) =>
    fetch(`${base}/ajax-api/2.0/mlflow/${p}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  // v1 goes to Production; a v2 takes the alias over.
  await post("model-versions/transition-stage", { name: "iris-classifier", version: "1", stage: "Production", archive_existing_versions: false });
  await post("model-versions/create", { name: "iris-classifier", source: `runs:/${seed.best}/classifier`, run_id: seed.best });
  await post("registered-models/alias", { name: "iris-classifier", alias: "challenger", version: "1" });
  await post("registered-models/alias", { name: "iris-classifier", alias: "challenger", version: "2" });
  await visit(`#/models/iris-classifier`);
  await page.getByRole("link", { name: "v1" }).click();
  await page.getByRole("heading", { name: /iris-classifier v1/ }).waitFor();
  const steps = await page.locator("ol.timeline li").allInnerTexts();
  const at = (re) => steps.findIndex((s) => re.test(s));
  assert.ok(at(/Training run sweep-\d+ started/) >= 0, steps.join(" | "));
  assert.ok(at(/Logged model classifier created/) > at(/Training run/), steps.join(" | "));
  assert.ok(at(/Registered as iris-classifier v1/) > at(/Logged model/), steps.join(" | "));
  assert.ok(at(/Alias @champion set here/) > at(/Registered as/), steps.join(" | "));
  assert.ok(at(/Stage changed to Production/) > at(/Alias @champion set here/), steps.join(" | "));
  assert.ok(at(/Alias @challenger moved to v2/) > at(/Alias @challenger set here/), steps.join(" | "));
  assert.ok(steps.every((s) => !s.startsWith("now")), "every step has its time: " + steps.join(" | "));
  assert.ok(await page.getByText(seed.model_id, { exact: true }).isVisible());
  assert.ok(await page.locator("table.kv th", { hasText: "validated" }).isVisible());
  await shot("model-version");
  await page.locator(".overview").getByRole("link").first().click();
  await page.waitForFunction((id) => location.hash === `#/runs/${id}`, seed.best);
  // v2's page: the alias that moved there, from v1.
  await visit(`#/models/iris-classifier/versions/2`);
  await page.locator("ol.timeline li", { hasText: "Alias @challenger set here (moved from v1)" }).waitFor();
  // A name that needs escaping, and a version that does not exist.
  const odd = "team's model #1 %2F";
  await post("registered-models/create", { name: odd });
  const created = await post("model-versions/create", { name: odd, source: `runs:/${seed.best}/model`, run_id: seed.best });
  assert.ok(created.ok, await created.text());
  await visit(`#/models/${encodeURIComponent(odd)}/versions/1`);
  await page.getByRole("heading", { name: `${odd} v1` }).waitFor();
  await visit(`#/models/iris-classifier/versions/99`);
  await page.locator(".error", { hasText: "RESOURCE_DOES_NOT_EXIST" }).waitFor();
  await visit(`#/models/iris-classifier/versions/..%2F..%2Fx`);
  await page.locator(".error").waitFor();
});

test("a runs table larger than a page draws, then holds every run in order", async () => {
  const call = async (p, body) => {
    const r = await fetch(`${base}/ajax-api/2.0/mlflow/${p}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const text = await r.text();
    assert.ok(r.ok, text);
    return JSON.parse(text);
  };
  const { experiment_id } = await call("experiments/create", { name: "ui-many" });
  const n = 1234;
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async (_, j) => {
        const { run } = await call("runs/create", { experiment_id, run_name: `many-${i + j}`, start_time: 1_700_000_000_000 + i + j });
        await call("runs/log-metric", { run_id: run.info.run_id, key: "score", value: i + j, timestamp: 1, step: 0 });
      }),
    );
  }
  await visit(`#/experiments/${experiment_id}?sort=${encodeURIComponent("metrics.`score` DESC")}&cols=m:score`);
  await rows().first().waitFor();
  await page.locator(".runs .count").filter({ hasText: `${n} runs` }).waitFor();
  assert.equal(await rows().first().locator(".name a").innerText(), `many-${n - 1}`);
  await page.locator(".runs .body").evaluate((el) => (el.scrollTop = el.scrollHeight));
  await page.locator(".runs .body .row", { hasText: "many-0" }).waitFor();
  const last = await rows().last().locator(".name a").innerText();
  assert.equal(last, "many-0", "the last page's last run is the lowest score");
});

test("the registry and monitors pages render", async () => {
  await fetch(`${base}/ajax-api/2.0/mlflow/registered-models/create`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: "iris" }) });
  await visit(`#/models`);
  await page.getByRole("link", { name: "iris", exact: true }).click();
  await page.getByRole("heading", { name: "iris" }).waitFor();
  await visit(`#/monitors`);
  await page.getByRole("heading", { name: "Monitors" }).waitFor();
  // An API error is shown, not swallowed.
  await visit(`#/runs/nope`);
  await page.locator(".error", { hasText: "RESOURCE_DOES_NOT_EXIST" }).waitFor();
});
