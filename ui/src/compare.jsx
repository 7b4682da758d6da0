// Compare runs: parameters and metrics side by side ("only differences"), a scatter of two
// metrics, parallel coordinates over the metrics, and their charts overlaid.
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { mlflow } from "./api.js";
import { MetricChart } from "./chart.jsx";
import { href, setQuery } from "./router.js";
import { ErrorBox, fmt, kv, Loading, useAsync } from "./util.jsx";

export function Compare({ query }) {
  const ids = (query.get("runs") || "").split(",").filter(Boolean);
  const diffOnly = query.get("diff") === "1";
  const runs = useAsync(
    () =>
      Promise.all(ids.map((id) => mlflow.get("runs/get", { run_id: id }))).then((rs) =>
        rs.map(({ run }) => ({
          id: run.info.run_id,
          name: run.info.run_name || run.info.run_id,
          params: kv(run.data.params),
          metrics: Object.fromEntries((run.data.metrics || []).map((m) => [m.key, m.value])),
        })),
      ),
    [ids.join(",")],
  );
  if (runs.loading && !runs.data) return <Loading what="runs" />;
  if (runs.error) return <ErrorBox error={runs.error} />;
  const list = runs.data;
  const rows = (kind) => {
    const keys = [...new Set(list.flatMap((r) => Object.keys(r[kind])))].sort();
    return keys
      .map((k) => ({ k, vs: list.map((r) => r[kind][k]) }))
      .filter(({ vs }) => !diffOnly || new Set(vs.map(String)).size > 1);
  };
  const metricKeys = [...new Set(list.flatMap((r) => Object.keys(r.metrics)))].sort();
  return (
    <section>
      <p class="crumbs">
        <a href={href("/")}>Experiments</a>
        {query.get("exp") && (
          <>
            {" "}/ <a href={href(`/experiments/${query.get("exp")}`)}>experiment {query.get("exp")}</a>
          </>
        )}{" "}
        / compare
      </p>
      <h1>Comparing {list.length} runs</h1>
      <label>
        <input type="checkbox" checked={diffOnly} onChange={(e) => setQuery({ diff: e.currentTarget.checked ? "1" : "" }, true)} /> only differences
      </label>
      <table class="grid compare">
        <thead>
          <tr>
            <th />
            {list.map((r) => (
              <th>
                <a href={href(`/runs/${r.id}`)}>{r.name}</a>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          <tr class="section">
            <th colSpan={list.length + 1}>Parameters</th>
          </tr>
          {rows("params").map(({ k, vs }) => (
            <tr class={new Set(vs.map(String)).size > 1 ? "differs" : ""} data-key={k}>
              <th>{k}</th>
              {vs.map((v) => (
                <td>{v ?? ""}</td>
              ))}
            </tr>
          ))}
          <tr class="section">
            <th colSpan={list.length + 1}>Metrics</th>
          </tr>
          {rows("metrics").map(({ k, vs }) => (
            <tr class={new Set(vs.map(String)).size > 1 ? "differs" : ""} data-key={k}>
              <th>{k}</th>
              {vs.map((v) => (
                <td class="num">{fmt(v)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {metricKeys.length >= 2 && <Scatter runs={list} keys={metricKeys} query={query} />}
      {metricKeys.length >= 2 && <Parallel runs={list} keys={metricKeys} />}
      {metricKeys.slice(0, 4).map((m) => (
        <MetricChart runs={list} metric={m} height={220} />
      ))}
    </section>
  );
}

function Scatter({ runs, keys, query }) {
  const x = query.get("x") || keys[0];
  const y = query.get("y") || keys[1];
  const el = useRef(null);
  useEffect(() => {
    const pts = runs.filter((r) => typeof r.metrics[x] === "number" && typeof r.metrics[y] === "number").sort((a, b) => a.metrics[x] - b.metrics[x]);
    const plot = new uPlot(
      {
        width: el.current.clientWidth || 500,
        height: 260,
        mode: 1,
        scales: { x: { time: false } },
        axes: [{ label: x }, { label: y }],
        series: [{}, { label: `${y} vs ${x}`, stroke: "#2563eb", width: 0, points: { show: true, size: 8, fill: "#2563eb" } }],
      },
      [pts.map((r) => r.metrics[x]), pts.map((r) => r.metrics[y])],
      el.current,
    );
    return () => plot.destroy();
  }, [runs, x, y]);
  const pick = (axis) => (
    <select aria-label={`Scatter ${axis}`} value={axis === "x" ? x : y} onChange={(e) => setQuery({ [axis]: e.currentTarget.value }, true)}>
      {keys.map((k) => (
        <option value={k}>{k}</option>
      ))}
    </select>
  );
  return (
    <figure class="chart">
      <figcaption>
        Scatter {pick("x")} against {pick("y")}
      </figcaption>
      <div ref={el} class="plot" />
    </figure>
  );
}

/** Parallel coordinates on a canvas: one vertical axis per metric, one line per run. */
function Parallel({ runs, keys }) {
  const el = useRef(null);
  const [w, setW] = useState(800);
  useEffect(() => {
    const c = el.current;
    setW(c.parentElement.clientWidth || 800);
  }, []);
  useEffect(() => {
    const c = el.current;
    const h = 260;
    const dpr = window.devicePixelRatio || 1;
    c.width = w * dpr;
    c.height = h * dpr;
    c.style.width = `${w}px`;
    c.style.height = `${h}px`;
    const g = c.getContext("2d");
    g.scale(dpr, dpr);
    const fg = getComputedStyle(document.body).color;
    g.clearRect(0, 0, w, h);
    const pad = 40, top = 20, bottom = h - 30;
    const step = (w - 2 * pad) / Math.max(1, keys.length - 1);
    const range = keys.map((k) => {
      const vs = runs.map((r) => r.metrics[k]).filter((v) => typeof v === "number");
      const lo = Math.min(...vs), hi = Math.max(...vs);
      return [lo, hi === lo ? lo + 1 : hi];
    });
    g.font = "12px system-ui, sans-serif";
    g.fillStyle = fg;
    g.strokeStyle = fg;
    keys.forEach((k, i) => {
      const x = pad + i * step;
      g.globalAlpha = 0.4;
      g.beginPath();
      g.moveTo(x, top);
      g.lineTo(x, bottom);
      g.stroke();
      g.globalAlpha = 1;
      g.fillText(k, x - 20, h - 10);
    });
    runs.forEach((r, j) => {
      g.strokeStyle = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"][j % 5];
      g.beginPath();
      keys.forEach((k, i) => {
        const v = r.metrics[k];
        if (typeof v !== "number") return;
        const [lo, hi] = range[i];
        const y = bottom - ((v - lo) / (hi - lo)) * (bottom - top);
        i ? g.lineTo(pad + i * step, y) : g.moveTo(pad, y);
      });
      g.stroke();
    });
  }, [runs, keys, w]);
  return (
    <figure class="chart">
      <figcaption>Parallel coordinates</figcaption>
      <canvas ref={el} aria-label="Parallel coordinates of the runs' metrics" />
    </figure>
  );
}
