// Metric charts with uPlot (canvas): runs overlaid, x as step, wall time or relative time,
// EMA smoothing, log scale, drag to zoom (double-click resets). Long series come thinned by
// the server (plumb's metrics/sampled keeps each interval's extremes), so a million points
// draw as a few thousand and a spike is not lost.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef, useState } from "preact/hooks";
import { plumb } from "./api.js";
import { ErrorBox } from "./util.jsx";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

export function ema(values, weight) {
  if (!weight) return values;
  const out = [];
  let last = 0, n = 0;
  for (const v of values) {
    if (v === null || !Number.isFinite(v)) {
      out.push(v);
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n += 1;
    // Debiased, as TensorBoard smooths: early points are not pulled toward zero.
    out.push(last / (1 - Math.pow(weight, n)));
  }
  return out;
}

/** The points of `key` for each run, thinned by the server to at most `max` per run keeping
 * each interval's lowest and highest point (plumb's `metrics/sampled`), in step order. */
export async function history(runIds, key, max = 2000) {
  const answer = await plumb.get("metrics/sampled", { run_ids: runIds, metric_key: key, max_points: max });
  const byRun = new Map(runIds.map((id) => [id, []]));
  for (const s of answer.series || []) byRun.set(s.run_id, s.points);
  return byRun;
}

/** uPlot's aligned data: one shared x (the union of all runs' x values), a series per run. */
export function align(byRun, xOf) {
  const xs = new Set();
  for (const list of byRun.values()) for (const p of list) xs.add(xOf(p, list));
  const x = [...xs].sort((a, b) => a - b);
  const at = new Map(x.map((v, i) => [v, i]));
  const series = [...byRun.values()].map((list) => {
    const ys = new Array(x.length).fill(null);
    for (const p of list) ys[at.get(xOf(p, list))] = typeof p.value === "number" ? p.value : Number(p.value);
    return ys;
  });
  return [x, ...series];
}

// Sparklines wait for the page's charts and then load one at a time: a chart is what the page
// is for, and a run with many metrics should not send them all at once.
let chartsLoading = 0;
let whenIdle = [];
const chartsIdle = () => (chartsLoading ? new Promise((ok) => whenIdle.push(ok)) : Promise.resolve());
function chartLoad(promise) {
  chartsLoading += 1;
  const done = () => {
    chartsLoading -= 1;
    if (!chartsLoading) whenIdle.splice(0).forEach((ok) => ok());
  };
  promise.then(done, done);
  return promise;
}
let sparkQueue = Promise.resolve();
function sparkHistory(runId, metric) {
  const next = sparkQueue.then(chartsIdle).then(() => history([runId], metric, 64));
  sparkQueue = next.catch(() => {});
  return next;
}

/** A metric's shape in a table cell: one SVG polyline of at most 64 points (each interval's
 * extremes, so a spike shows), fetched when the cell first scrolls into view (after the page's
 * charts), so a run with hundreds of metrics asks only for the rows on screen. */
export function Sparkline({ runId, metric, width = 96, height = 20 }) {
  const el = useRef(null);
  const [points, setPoints] = useState(null);
  const [seen, setSeen] = useState(false);
  useEffect(() => {
    const io = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && setSeen(true));
    io.observe(el.current);
    return () => io.disconnect();
  }, []);
  useEffect(() => {
    if (!seen) return;
    let live = true;
    sparkHistory(runId, metric).then(
      (d) => live && setPoints(d.get(runId) || []),
      () => live && setPoints([]),
    );
    return () => {
      live = false;
    };
  }, [seen, runId, metric]);
  const ys = (points || []).map((p) => Number(p.value)).filter(Number.isFinite);
  let line = "";
  if (ys.length > 1) {
    const lo = Math.min(...ys), hi = Math.max(...ys);
    const span = hi - lo || 1;
    line = ys.map((y, i) => `${((i / (ys.length - 1)) * (width - 2) + 1).toFixed(1)},${(height - 1 - ((y - lo) / span) * (height - 2)).toFixed(1)}`).join(" ");
  }
  return (
    <svg ref={el} class="spark" width={width} height={height} role="img" aria-label={`${metric} over ${ys.length} points`} data-points={points ? ys.length : undefined}>
      {line && <polyline points={line} fill="none" stroke="currentColor" stroke-width="1.2" />}
    </svg>
  );
}

export function MetricChart({ runs, metric, height = 300 }) {
  const el = useRef(null);
  const [xAxis, setXAxis] = useState("step");
  const [smooth, setSmooth] = useState(0);
  const [log, setLog] = useState(false);
  const [data, setData] = useState(null);
  const [error, setError] = useState();
  const ids = runs.map((r) => r.id).join(",");
  useEffect(() => {
    let live = true;
    setError(undefined);
    chartLoad(history(runs.map((r) => r.id), metric)).then((d) => live && setData(d), (e) => live && setError(e));
    return () => {
      live = false;
    };
  }, [ids, metric]);
  useEffect(() => {
    if (!data || !el.current) return;
    const xOf =
      xAxis === "step" ? (p) => Number(p.step) : xAxis === "wall" ? (p) => Number(p.timestamp) / 1000 : (p, list) => (Number(p.timestamp) - Number(list[0].timestamp)) / 1000;
    const aligned = align(data, xOf);
    const shown = [aligned[0], ...aligned.slice(1).map((ys) => ema(ys, smooth))];
    const opts = {
      width: el.current.clientWidth || 600,
      height,
      scales: { x: { time: xAxis === "wall" }, y: { distr: log ? 3 : 1 } },
      axes: [{ label: xAxis === "step" ? "step" : xAxis === "wall" ? "" : "seconds" }, {}],
      series: [{}, ...runs.map((r, i) => ({ label: r.name, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))],
      cursor: { drag: { x: true, y: false } },
      // How many points the last draw painted, for tests and the UI benchmark to wait on.
      hooks: { draw: [(u) => el.current?.setAttribute("data-drawn", String(u.data[0].length))] },
    };
    const plot = new uPlot(opts, shown, el.current);
    const ro = new ResizeObserver(() => plot.setSize({ width: el.current.clientWidth, height }));
    ro.observe(el.current);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [data, xAxis, smooth, log, height]);
  return (
    <figure class="chart" data-metric={metric}>
      <figcaption>
        <strong>{metric}</strong>
        <select aria-label="X axis" value={xAxis} onChange={(e) => setXAxis(e.currentTarget.value)}>
          <option value="step">Step</option>
          <option value="wall">Wall time</option>
          <option value="relative">Relative time</option>
        </select>
        <label>
          Smoothing{" "}
          <input type="range" min="0" max="0.99" step="0.01" value={smooth} onInput={(e) => setSmooth(Number(e.currentTarget.value))} />
        </label>
        <label>
          <input type="checkbox" checked={log} onChange={(e) => setLog(e.currentTarget.checked)} /> log
        </label>
      </figcaption>
      <ErrorBox error={error} />
      <div ref={el} class="plot" />
    </figure>
  );
}
