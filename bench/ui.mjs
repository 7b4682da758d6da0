// The UI benchmark's browser half (bench/run.py --ui starts the servers and loads the data):
// headless Debian Chromium, driven by playwright-core from ui/node_modules, opens one UI's runs
// table and its chart of a 1M-point metric, each in a fresh browser context (nothing cached),
// and prints one JSON line of medians.
//
//   node bench/ui.mjs '{"peer": "plumb", "runs_url": ..., "chart_url": ..., "row": "run-09990",
//                       "all_runs": 10001, "repeats": 5}'
//
// Times are the page's own clock from the start of navigation (performance.now()):
// - rows_ms: a run of the table (`row`, a few rows down) is on screen;
// - interactive_ms: rows are on screen and the main thread has had no long task (> 50 ms, the
//   Long Tasks API) for 2 s after: the later of the two (the TTI definition);
// - all_ms: the table holds every run (plumb says "N runs" without "loading more"; MLflow's
//   table shows 100 with a "Load more" button, so it has none);
// - chart_ms: the chart's line is painted (plumb: uPlot's draw hook; MLflow: plotly's line path);
// - chart_interactive_ms, as above for the chart page.
import { chromium } from "../ui/node_modules/playwright-core/index.mjs";

const cfg = JSON.parse(process.argv[2]);
const QUIET = 2000;

const longTasks = () => {
  window.__longEnds = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longEnds.push(e.startTime + e.duration);
  }).observe({ type: "longtask", buffered: true });
};

async function interactive(page, readyMs) {
  for (;;) {
    const [now, ends] = await page.evaluate(() => [performance.now(), window.__longEnds || []]);
    const last = Math.max(readyMs, ...ends);
    if (now - last >= QUIET) return { ms: last, long_tasks: ends.length };
    await page.waitForTimeout(100);
  }
}

async function visit(browser, url, ready, extra) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await ctx.addInitScript(longTasks);
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: "commit" });
  // The extra wait starts with the first, so its time is its own, not after the quiet window.
  const pending = extra ? extra(page) : Promise.resolve({});
  const readyMs = await (await page.waitForFunction(ready, cfg, { polling: "raf", timeout: 120_000 })).jsonValue();
  const tti = await interactive(page, readyMs);
  const more = await pending;
  const bytes = await page.evaluate(() =>
    performance
      .getEntriesByType("resource")
      .filter((r) => r.initiatorType === "script" || r.initiatorType === "link" || /\.(js|css)(\?|$)/.test(r.name))
      .reduce((s, r) => s + (r.encodedBodySize || 0), 0),
  );
  const heap = await page.evaluate(() => performance.memory?.usedJSHeapSize || 0);
  await ctx.close();
  return { ready_ms: readyMs, interactive_ms: tti.ms, long_tasks: tti.long_tasks, asset_bytes: bytes, heap_bytes: heap, errors, ...more };
}

// Each check runs in the page (polled every frame) and returns performance.now() once true.
const rowShown = (c) => {
  for (const a of document.querySelectorAll("a")) {
    if (a.textContent.trim() === c.row) {
      const r = a.getBoundingClientRect();
      if (r.height > 0 && r.bottom > 0 && r.top < innerHeight) return performance.now();
    }
  }
  return false;
};
const chartDrawn = (c) => {
  if (c.peer === "plumb") {
    const el = document.querySelector(".plot[data-drawn]");
    return el && Number(el.dataset.drawn) > 0 ? performance.now() : false;
  }
  const path = document.querySelector(".js-plotly-plot .scatterlayer path.js-line");
  return path && (path.getAttribute("d") || "").length > 50 ? performance.now() : false;
};
const allRuns = async (page) => {
  if (cfg.peer !== "plumb") return { all_ms: null };
  const h = await page.waitForFunction(
    (n) => {
      const el = document.querySelector(".count");
      return el && el.textContent.trim() === `${n} runs` ? performance.now() : false;
    },
    cfg.all_runs,
    { polling: "raf", timeout: 120_000 },
  );
  return { all_ms: await h.jsonValue() };
};

const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number").sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--enable-precise-memory-info"],
});
const table = [], chart = [];
try {
  for (let i = 0; i < (cfg.repeats || 5); i++) {
    table.push(await visit(browser, cfg.runs_url, rowShown, allRuns));
    chart.push(await visit(browser, cfg.chart_url, chartDrawn));
  }
} finally {
  await browser.close();
}
const pick = (list, k) => median(list.map((x) => x[k]));
console.log(
  JSON.stringify({
    repeats: table.length,
    rows_ms: pick(table, "ready_ms"),
    interactive_ms: pick(table, "interactive_ms"),
    all_ms: pick(table, "all_ms"),
    long_tasks: pick(table, "long_tasks"),
    heap_mib: pick(table, "heap_bytes") / 2 ** 20,
    asset_kib: pick(table, "asset_bytes") / 1024,
    chart_ms: pick(chart, "ready_ms"),
    chart_interactive_ms: pick(chart, "interactive_ms"),
    chart_heap_mib: pick(chart, "heap_bytes") / 2 ** 20,
    page_errors: [...table, ...chart].flatMap((x) => x.errors).slice(0, 3),
  }),
);
