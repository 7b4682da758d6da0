// Monitors: each one's rules with their alert state, and a rule's metric over time against
// its baseline and threshold, with the alert timeline.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { plumb } from "./api.js";
import { href } from "./router.js";
import { ErrorBox, fmt, Loading, useAsync, when } from "./util.jsx";

export function Monitors() {
  const list = useAsync(() => plumb.get("monitors"), []);
  const alerts = useAsync(() => plumb.get("alerts"), []);
  if (list.loading && !list.data) return <Loading what="monitors" />;
  const byMonitor = {};
  for (const a of alerts.data?.alerts || []) (byMonitor[a.monitor] ||= []).push(a);
  return (
    <section>
      <h1>Monitors</h1>
      <ErrorBox error={list.error || alerts.error} />
      {(list.data?.monitors || []).length === 0 && <p class="muted">No monitors yet: see `plumb monitor apply` in the README.</p>}
      <table class="grid">
        <thead>
          <tr>
            <th>Monitor</th>
            <th>Watches</th>
            <th>Rules</th>
            <th>Alerts</th>
          </tr>
        </thead>
        <tbody>
          {(list.data?.monitors || []).map((m) => (
            <tr>
              <td>
                <a href={href(`/monitors/${encodeURIComponent(m.name)}`)}>{m.name}</a>
              </td>
              <td>{m.spec.model || ""}</td>
              <td>{(m.spec.rules || []).length}</td>
              <td>
                {(byMonitor[m.name] || []).map((a) => (
                  <span class={`badge ${a.state}`}>
                    {a.rule}: {a.state}
                  </span>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function Monitor({ name }) {
  const m = useAsync(() => plumb.get(`monitors/${encodeURIComponent(name)}`), [name]);
  const history = useAsync(() => plumb.get("alerts/history", { monitor: name }), [name]);
  if (m.loading && !m.data) return <Loading what="the monitor" />;
  if (m.error) return <ErrorBox error={m.error} />;
  const mon = m.data.monitor;
  const alerts = m.data.alerts || [];
  return (
    <section>
      <p class="crumbs">
        <a href={href("/monitors")}>Monitors</a> / {name}
      </p>
      <h1>{name}</h1>
      <p>{mon.spec.description}</p>
      <p>
        Watches <code>{mon.spec.model || "(no model)"}</code>; baseline <code>{JSON.stringify(mon.spec.baseline ?? null)}</code>
      </p>
      {(mon.spec.rules || []).map((r) => {
        const a = alerts.find((x) => x.rule === r.name);
        return (
          <div class="rule">
            <h2>
              {r.name} <span class={`badge ${a?.state || "inactive"}`}>{a?.state || "inactive"}</span>
            </h2>
            <p class="muted">
              {r.metric} over {r.window}: {a?.message}
            </p>
            <Series monitor={name} rule={r} />
          </div>
        );
      })}
      <h2>Alert timeline</h2>
      <ErrorBox error={history.error} />
      <table class="grid">
        <tbody>
          {(history.data?.history || []).map((h) => (
            <tr>
              <td>{when(h.at_ms)}</td>
              <td>{h.rule}</td>
              <td>
                {h.from} → <span class={`badge ${h.to}`}>{h.to}</span>
              </td>
              <td class="num">{fmt(h.value)}</td>
              <td>{h.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Series({ monitor, rule }) {
  const el = useRef(null);
  const s = useAsync(
    () => plumb.get(`monitors/${encodeURIComponent(monitor)}/metrics`, { metric: rule.metric, window: rule.window, from: rule.from }),
    [monitor, rule.name],
  );
  const limit = rule.above ?? rule.below ?? rule.threshold;
  useEffect(() => {
    if (!s.data || !el.current) return;
    const pts = s.data.points || [];
    const x = pts.map((p) => p.timestamp_ms / 1000);
    const series = [{}, { label: rule.metric, stroke: "#2563eb", width: 1.5, spanGaps: false }];
    const data = [x, pts.map((p) => p.value)];
    if (typeof s.data.baseline === "number") {
      series.push({ label: "baseline", stroke: "#16a34a", dash: [6, 4] });
      data.push(x.map(() => s.data.baseline));
    }
    if (typeof limit === "number") {
      series.push({ label: "threshold", stroke: "#dc2626", dash: [2, 3] });
      data.push(x.map(() => limit));
    }
    const plot = new uPlot({ width: el.current.clientWidth || 600, height: 220, series }, data, el.current);
    return () => plot.destroy();
  }, [s.data]);
  return (
    <>
      <ErrorBox error={s.error} />
      <div ref={el} class="plot" data-metric={rule.metric} />
    </>
  );
}
