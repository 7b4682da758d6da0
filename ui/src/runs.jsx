// An experiment's runs: a virtualized table (tens of thousands of rows), MLflow's filter with
// key completion, server-side sort, chosen columns, grouping by a tag, a pinned baseline run
// with deltas, thresholds and required tags (experiment tags, so MLflow's API sees them too).
// The view's state lives in the URL.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { mlflow, pages } from "./api.js";
import { href, navigate, setQuery } from "./router.js";
import { duration, ErrorBox, fmt, kv, Loading, useAsync, usePaged, when } from "./util.jsx";

export const BASELINE_TAG = "plumb.baseline_run";
export const THRESHOLD_PREFIX = "plumb.threshold.";
export const REQUIRED_TAGS = "plumb.required_tags";
const ROW = 30;

/** `>= 0.9` -> {op, value}; anything else -> null. */
export function parseThreshold(s) {
  const m = /^\s*(>=|<=|>|<)\s*(-?[\d.]+(?:e-?\d+)?)\s*$/i.exec(s || "");
  return m ? { op: m[1], value: Number(m[2]) } : null;
}

export function meets(t, v) {
  if (!t || typeof v !== "number") return true;
  return { ">=": v >= t.value, "<=": v <= t.value, ">": v > t.value, "<": v < t.value }[t.op];
}

const colKey = (c) => `${c.kind}:${c.key}`;
const colOf = (s) => {
  const i = s.indexOf(":");
  return { kind: s.slice(0, i), key: s.slice(i + 1) };
};
const sortKey = (c) => (c.kind === "m" ? "metrics" : c.kind === "p" ? "params" : "tags") + ".`" + c.key + "`";

/** A search answer's run as the table holds it. */
function row(r) {
  return {
    id: r.info.run_id,
    name: r.info.run_name || r.info.run_id,
    status: r.info.status,
    start: r.info.start_time,
    end: r.info.end_time,
    user: r.info.user_id,
    metrics: Object.fromEntries((r.data.metrics || []).map((m) => [m.key, m.value])),
    params: kv(r.data.params),
    tags: kv(r.data.tags),
  };
}

function value(run, c) {
  if (c.kind === "m") return run.metrics[c.key];
  if (c.kind === "p") return run.params[c.key];
  return run.tags[c.key];
}

export function Runs({ id, query }) {
  const filter = query.get("filter") || "";
  const sort = query.get("sort") || "";
  const group = query.get("group") || "";
  const selected = new Set((query.get("sel") || "").split(",").filter(Boolean));
  const missingOnly = query.get("missing") === "1";
  const [draft, setDraft] = useState(filter);
  const [error, setError] = useState();
  const [chooser, setChooser] = useState(false);
  useEffect(() => setDraft(filter), [filter]);

  const exp = useAsync(() => mlflow.get("experiments/get", { experiment_id: id }), [id]);
  const runs = usePaged(
    (onPage, alive) =>
      pages(
        "runs/search",
        { experiment_ids: [id], filter: filter || undefined, order_by: sort ? [sort] : undefined, max_results: 2500 },
        "runs",
        (items, more, capped) => onPage(items.map(row), more, capped),
        alive,
      ),
    [id, filter, sort],
  );
  const etags = kv(exp.data?.experiment?.tags);
  const baselineId = etags[BASELINE_TAG];
  const thresholds = {};
  for (const [k, v] of Object.entries(etags)) {
    if (k.startsWith(THRESHOLD_PREFIX)) thresholds[k.slice(THRESHOLD_PREFIX.length)] = parseThreshold(v);
  }
  const required = (etags[REQUIRED_TAGS] || "").split(",").map((s) => s.trim()).filter(Boolean);

  const keys = useMemo(() => {
    const m = new Set(), p = new Set(), t = new Set();
    for (const r of runs.data || []) {
      Object.keys(r.metrics).forEach((k) => m.add(k));
      Object.keys(r.params).forEach((k) => p.add(k));
      Object.keys(r.tags).forEach((k) => k.startsWith("mlflow.") || t.add(k));
    }
    return { m: [...m].sort(), p: [...p].sort(), t: [...t].sort() };
  }, [runs.data]);
  const cols = query.get("cols")
    ? query.get("cols").split(",").filter(Boolean).map(colOf)
    : [...keys.m.slice(0, 6).map((key) => ({ kind: "m", key })), ...keys.p.slice(0, 4).map((key) => ({ kind: "p", key }))];

  const baseline = (runs.data || []).find((r) => r.id === baselineId);
  const missing = (r) => required.filter((k) => !(k in r.tags));
  let rows = runs.data || [];
  if (missingOnly) rows = rows.filter((r) => missing(r).length);
  const items = useMemo(() => {
    if (!group) return rows.map((r) => ({ run: r }));
    const groups = new Map();
    for (const r of rows) {
      const g = r.tags[group] ?? "(none)";
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(r);
    }
    const out = [];
    for (const [g, list] of [...groups.entries()].sort()) {
      out.push({ group: g, count: list.length });
      list.forEach((r) => out.push({ run: r }));
    }
    return out;
  }, [rows, group]);

  const act = async (f) => {
    setError(undefined);
    try {
      await f();
      exp.reload();
    } catch (e) {
      setError(e);
    }
  };
  const setTag = (key, v) => mlflow.post("experiments/set-experiment-tag", { experiment_id: id, key, value: v });
  const toggle = (runId) => {
    const s = new Set(selected);
    s.has(runId) ? s.delete(runId) : s.add(runId);
    setQuery({ sel: [...s] }, true);
  };
  const sortBy = (c) => {
    const k = sortKey(c);
    setQuery({ sort: sort === `${k} DESC` ? `${k} ASC` : `${k} DESC` });
  };
  const suggestions = [
    ...keys.m.map((k) => `metrics.\`${k}\``),
    ...keys.p.map((k) => `params.\`${k}\``),
    ...keys.t.map((k) => `tags.\`${k}\``),
    "attributes.status",
    "attributes.run_name",
    "attributes.start_time",
  ];

  return (
    <section>
      <p class="crumbs">
        <a href={href("/")}>Experiments</a> / {exp.data?.experiment?.name || id}
      </p>
      <h1>{exp.data?.experiment?.name || "Runs"}</h1>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery({ filter: draft.trim() });
        }}
      >
        <input
          class="filter"
          type="search"
          list="run-keys"
          aria-label="Filter runs"
          placeholder="metrics.`accuracy` > 0.9 and params.`lr` = '0.01' and tags.env = 'production'"
          value={draft}
          onInput={(e) => setDraft(e.currentTarget.value)}
        />
        <datalist id="run-keys">{suggestions.map((s) => <option value={s} />)}</datalist>
        <button type="submit">Search</button>
        <select aria-label="Group by tag" value={group} onChange={(e) => setQuery({ group: e.currentTarget.value })}>
          <option value="">No grouping</option>
          {keys.t.map((t) => (
            <option value={t}>Group by {t}</option>
          ))}
        </select>
        <button type="button" onClick={() => setChooser(!chooser)} aria-expanded={chooser}>
          Columns
        </button>
        <button type="button" disabled={selected.size < 2} onClick={() => navigate("/compare", { runs: [...selected].join(","), exp: id })}>
          Compare ({selected.size})
        </button>
        <button type="button" disabled={selected.size !== 1} onClick={() => act(() => setTag(BASELINE_TAG, [...selected][0]))}>
          Pin as baseline
        </button>
        {required.length > 0 && (
          <label>
            <input type="checkbox" checked={missingOnly} onChange={(e) => setQuery({ missing: e.currentTarget.checked ? "1" : "" })} /> missing required tags
          </label>
        )}
      </form>
      {chooser && <Chooser keys={keys} cols={cols} />}
      <Conventions thresholds={thresholds} required={required} metrics={keys.m} onSet={(k, v) => act(() => setTag(k, v))} />
      <ErrorBox error={error || exp.error || runs.error} />
      {baseline && (
        <p class="note">
          Baseline: <a href={href(`/runs/${baseline.id}`)}>{baseline.name}</a>; metric cells show the change against it.{" "}
          <button onClick={() => act(() => mlflow.post("experiments/delete-experiment-tag", { experiment_id: id, key: BASELINE_TAG }).catch(() => setTag(BASELINE_TAG, "")))}>Unpin</button>
        </p>
      )}
      {runs.loading && !runs.data ? (
        <Loading what="runs" />
      ) : (
        <Table items={items} cols={cols} selected={selected} toggle={toggle} sort={sort} sortBy={sortBy} baseline={baseline} thresholds={thresholds} missing={missing} count={rows.length} more={runs.loading} capped={runs.capped} />
      )}
    </section>
  );
}

function Chooser({ keys, cols }) {
  const on = new Set(cols.map(colKey));
  const flip = (c) => {
    const k = colKey(c);
    const next = on.has(k) ? cols.filter((x) => colKey(x) !== k) : [...cols, c];
    setQuery({ cols: next.map(colKey) }, true);
  };
  const group = (title, kind, list) => (
    <fieldset>
      <legend>{title}</legend>
      {list.map((key) => (
        <label>
          <input type="checkbox" checked={on.has(`${kind}:${key}`)} onChange={() => flip({ kind, key })} /> {key}
        </label>
      ))}
    </fieldset>
  );
  return (
    <div class="chooser">
      {group("Metrics", "m", keys.m)}
      {group("Parameters", "p", keys.p)}
      {group("Tags", "t", keys.t)}
    </div>
  );
}

function Conventions({ thresholds, required, metrics, onSet }) {
  const [metric, setMetric] = useState("");
  const [rule, setRule] = useState("");
  return (
    <details class="conventions">
      <summary>Thresholds and required tags</summary>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          if (metric && parseThreshold(rule)) onSet(THRESHOLD_PREFIX + metric, rule.trim());
        }}
      >
        <select aria-label="Threshold metric" value={metric} onChange={(e) => setMetric(e.currentTarget.value)}>
          <option value="">Metric…</option>
          {metrics.map((m) => (
            <option value={m}>{m}</option>
          ))}
        </select>
        <input aria-label="Threshold" placeholder=">= 0.9" value={rule} onInput={(e) => setRule(e.currentTarget.value)} />
        <button type="submit">Set threshold</button>
      </form>
      <ul>
        {Object.entries(thresholds).map(([m, t]) => (
          <li>
            {m} {t ? `${t.op} ${t.value}` : "(unreadable)"}
          </li>
        ))}
      </ul>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          onSet(REQUIRED_TAGS, new FormData(e.currentTarget).get("tags"));
        }}
      >
        <input name="tags" aria-label="Required tags" placeholder="env, team" value={required.join(", ")} />
        <button type="submit">Set required tags</button>
      </form>
    </details>
  );
}

function Table({ items, cols, selected, toggle, sort, sortBy, baseline, thresholds, missing, count, more, capped }) {
  const box = useRef(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(600);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(top / ROW) - 10);
  const last = Math.min(items.length, Math.ceil((top + height) / ROW) + 10);
  const arrow = (c) => (sort.startsWith(sortKey(c)) ? (sort.endsWith("ASC") ? " ▲" : " ▼") : "");
  const keyNav = (e, i) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const next = i + (e.key === "ArrowDown" ? 1 : -1);
      if (next < 0 || next >= items.length) return;
      const el = box.current;
      if (next * ROW < el.scrollTop) el.scrollTop = next * ROW;
      else if ((next + 1) * ROW > el.scrollTop + el.clientHeight) el.scrollTop = (next + 1) * ROW - el.clientHeight;
      requestAnimationFrame(() => box.current.querySelector(`[data-row="${next}"]`)?.focus());
    } else if (e.key === " " && items[i].run) {
      e.preventDefault();
      toggle(items[i].run.id);
    } else if (e.key === "Enter" && items[i].run) {
      navigate(`/runs/${items[i].run.id}`);
    }
  };
  // Fixed widths: every row is its own grid, so only fixed tracks line up with the header.
  const template = `2.2rem 15rem 6rem 10.5rem 5rem 7rem ${cols.map(() => "9rem").join(" ")}`;
  return (
    <div class="runs" role="table" aria-rowcount={items.length} aria-label={`${count} runs`} aria-busy={more ? "true" : "false"}>
      <div class="row head" role="row" style={{ gridTemplateColumns: template }}>
        <span />
        <span role="columnheader">Run</span>
        <span role="columnheader">Status</span>
        <span role="columnheader">Started</span>
        <span role="columnheader">Duration</span>
        <span role="columnheader">User</span>
        {cols.map((c) => (
          <button role="columnheader" class={`sort kind-${c.kind}`} title={sortKey(c)} onClick={() => sortBy(c)}>
            {c.key}
            {arrow(c)}
          </button>
        ))}
      </div>
      <div class="body" ref={box} onScroll={(e) => setTop(e.currentTarget.scrollTop)}>
        <div style={{ height: `${items.length * ROW}px`, position: "relative" }}>
          {items.slice(first, last).map((it, j) => {
            const i = first + j;
            const style = { top: `${i * ROW}px`, gridTemplateColumns: template };
            if (it.group !== undefined)
              return (
                <div class="row group" style={style} key={`g-${it.group}`} data-row={i} tabIndex={0} onKeyDown={(e) => keyNav(e, i)}>
                  <span />
                  <strong>
                    {it.group} ({it.count})
                  </strong>
                </div>
              );
            const r = it.run;
            const miss = missing(r);
            return (
              <div
                class={`row${selected.has(r.id) ? " selected" : ""}${baseline?.id === r.id ? " baseline" : ""}`}
                role="row"
                style={style}
                key={r.id}
                data-row={i}
                tabIndex={0}
                onKeyDown={(e) => keyNav(e, i)}
              >
                <span>
                  <input type="checkbox" aria-label={`Select ${r.name}`} checked={selected.has(r.id)} onChange={() => toggle(r.id)} tabIndex={-1} />
                </span>
                <span class="name">
                  <a href={href(`/runs/${r.id}`)} tabIndex={-1}>
                    {r.name}
                  </a>
                  {miss.length > 0 && (
                    <span class="flag" title={`missing tags: ${miss.join(", ")}`}>
                      missing {miss.join(", ")}
                    </span>
                  )}
                </span>
                <span class={`status ${r.status}`}>{r.status}</span>
                <span>{when(r.start)}</span>
                <span>{duration(r.start, r.end)}</span>
                <span>{r.user}</span>
                {cols.map((c) => {
                  const v = value(r, c);
                  const t = c.kind === "m" ? thresholds[c.key] : null;
                  const bad = t && !meets(t, v);
                  const base = c.kind === "m" && baseline && baseline.id !== r.id ? baseline.metrics[c.key] : undefined;
                  const delta = typeof v === "number" && typeof base === "number" ? v - base : undefined;
                  return (
                    <span class={`num${bad ? " miss" : ""}`} title={bad ? `misses ${c.key} ${t.op} ${t.value}` : undefined}>
                      {fmt(v)}
                      {delta !== undefined && <small class={delta >= 0 ? "up" : "down"}>{`${delta >= 0 ? "+" : ""}${fmt(delta)}`}</small>}
                    </span>
                  );
                })}
              </div>
            );
          })}
        </div>
      </div>
      <p class="muted count" aria-busy={more ? "true" : "false"}>
        {count} runs{more ? ", loading more…" : ""}
        {capped ? " shown, the first of more: narrow the filter or sort to see others" : ""}
      </p>
    </div>
  );
}
