// Hash routing with the view's state in the query part (#/experiments/1?filter=...): a link
// reproduces the view, and back/forward walk through its changes.
import { useEffect, useState } from "preact/hooks";

export function parse() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) };
}

export function href(path, query) {
  const q = query && [...new URLSearchParams(query)].length ? `?${new URLSearchParams(query)}` : "";
  return `#${path}${q}`;
}

export function navigate(path, query, replace = false) {
  const h = href(path, query);
  if (replace) history.replaceState(null, "", h);
  else history.pushState(null, "", h);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

/** Updates some keys of the current view's query (empty values are dropped). */
export function setQuery(changes, replace = false) {
  const { path, query } = parse();
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === "" || (Array.isArray(v) && !v.length)) query.delete(k);
    else query.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  navigate(path, query, replace);
}

export function useRoute() {
  const [route, setRoute] = useState(parse());
  useEffect(() => {
    const on = () => setRoute(parse());
    window.addEventListener("hashchange", on);
    window.addEventListener("popstate", on);
    return () => {
      window.removeEventListener("hashchange", on);
      window.removeEventListener("popstate", on);
    };
  }, []);
  return route;
}
