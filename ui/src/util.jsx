// Small shared pieces: loading data with its error shown, number and time formatting.
import { useEffect, useState } from "preact/hooks";

/** Runs `load` when `deps` change; gives {data, error, loading, reload}. */
export function useAsync(load, deps) {
  const [state, setState] = useState({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: undefined }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** Like useAsync for a search read page by page: `start(onPage, alive)` calls `onPage(items,
 * more, capped)` with each page's items; `data` holds the items so far while `loading` stays
 * true for the rest. An error after the first page keeps the rows already shown. */
export function usePaged(start, deps) {
  const [state, setState] = useState({ data: undefined, error: undefined, loading: true, capped: false });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let shown;
    setState((s) => ({ ...s, loading: true, error: undefined }));
    start(
      (items, more, capped) => {
        shown = shown ? shown.concat(items) : items;
        if (live) setState({ data: shown, error: undefined, loading: more, capped });
      },
      () => live,
    ).catch((error) => live && setState({ data: shown, error, loading: false, capped: false }));
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <strong>{error.code || "Error"}</strong> {error.message}
    </div>
  );
}

export function Loading({ what }) {
  return <p class="muted" aria-busy="true">Loading {what}…</p>;
}

export function fmt(v) {
  if (v === undefined || v === null || v === "") return "";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
  }
  return String(v);
}

export function when(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  return d.toISOString().replace("T", " ").slice(0, 19);
}

export function duration(start, end) {
  if (!start || !end) return "";
  const s = (Number(end) - Number(start)) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${(s / 60).toFixed(1)}min`;
  return `${(s / 3600).toFixed(1)}h`;
}

/** A map of an entity's `[{key, value}]` list. */
export function kv(list) {
  const out = {};
  for (const x of list || []) out[x.key] = x.value;
  return out;
}
