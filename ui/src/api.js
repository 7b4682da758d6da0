// The REST API, as the UI reads it: MLflow's routes under /ajax-api and plumb's own under
// /ajax-api/2.0/plumb. Errors keep MLflow's message, so pages can show them.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body, params) {
  let url = path;
  if (params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null) continue;
      for (const x of Array.isArray(v) ? v : [v]) q.append(k, String(x));
    }
    url += `?${q}`;
  }
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, "NETWORK", `The server did not answer (${e.message})`);
  }
  const text = await resp.text();
  let json = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { message: text.slice(0, 300) };
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, json.error_code || String(resp.status), json.message || resp.statusText);
  }
  return json;
}

const M = "/ajax-api/2.0/mlflow";
export const mlflow = {
  get: (p, params) => call("GET", `${M}/${p}`, undefined, params),
  post: (p, body) => call("POST", `${M}/${p}`, body),
};
export const plumb = {
  get: (p, params) => call("GET", `/ajax-api/2.0/plumb/${p}`, undefined, params),
};

/** Every page of a search, up to `limit` items (`key` names the list in each answer); the
 * registry's searches are GETs in MLflow's API. */
export async function all(path, body, key, limit = 50000, method = "POST") {
  const out = [];
  let token;
  do {
    const args = { ...body, page_token: token };
    const page = method === "GET" ? await mlflow.get(path, args) : await mlflow.post(path, args);
    out.push(...(page[key] || []));
    token = page.next_page_token;
  } while (token && out.length < limit);
  return out;
}

/** Pages of a POST search as they arrive: `onPage(items, more, capped)` with each page's items,
 * so a view draws the first page while the rest loads. The first page is small (a quick first
 * paint), the rest large (fewer round trips). Stops when `alive()` turns false, or at `limit`
 * items (`capped`: the search has more). */
export async function pages(path, body, key, onPage, alive, limit = 50000) {
  let token;
  let count = 0;
  let size = Math.min(200, body.max_results || 200);
  do {
    const page = await mlflow.post(path, { ...body, max_results: size, page_token: token });
    if (!alive()) return;
    const items = page[key] || [];
    count += items.length;
    token = page.next_page_token;
    onPage(items, Boolean(token) && count < limit, Boolean(token) && count >= limit);
    size = body.max_results || 1000;
  } while (token && count < limit);
}

export function artifactUrl(runId, path) {
  return `/get-artifact?${new URLSearchParams({ path, run_uuid: runId })}`;
}
