// A run: overview, parameters, metrics (latest value, sparkline, chart), editable tags, datasets,
// logged models, and an artifact browser with previews.
import { useState } from "preact/hooks";
import { artifactUrl, mlflow } from "./api.js";
import { MetricChart, Sparkline } from "./chart.jsx";
import { href, setQuery } from "./router.js";
import { duration, ErrorBox, fmt, kv, Loading, useAsync, when } from "./util.jsx";

export function Run({ id, query }) {
  const run = useAsync(() => mlflow.get("runs/get", { run_id: id }), [id]);
  const [error, setError] = useState();
  const chart = query.get("metric");
  if (run.loading && !run.data) return <Loading what="the run" />;
  if (run.error) return <ErrorBox error={run.error} />;
  const { info, data, inputs, outputs } = run.data.run;
  const tags = kv(data.tags);
  const act = async (f) => {
    setError(undefined);
    try {
      await f();
      run.reload();
    } catch (e) {
      setError(e);
    }
  };
  const metrics = data.metrics || [];
  return (
    <section>
      <p class="crumbs">
        <a href={href("/")}>Experiments</a> / <a href={href(`/experiments/${info.experiment_id}`)}>experiment {info.experiment_id}</a> / {info.run_name}
      </p>
      <h1>{info.run_name || info.run_id}</h1>
      <ErrorBox error={error} />
      <dl class="overview">
        <dt>Run ID</dt>
        <dd>
          <code>{info.run_id}</code>
        </dd>
        <dt>Status</dt>
        <dd class={`status ${info.status}`}>{info.status}</dd>
        <dt>Started</dt>
        <dd>{when(info.start_time)}</dd>
        <dt>Duration</dt>
        <dd>{duration(info.start_time, info.end_time)}</dd>
        <dt>User</dt>
        <dd>{info.user_id}</dd>
        <dt>Artifacts</dt>
        <dd>
          <code>{info.artifact_uri}</code>
        </dd>
      </dl>
      <div class="columns">
        <div>
          <h2>Parameters</h2>
          <table class="grid kv">
            <tbody>
              {(data.params || []).map((p) => (
                <tr>
                  <th>{p.key}</th>
                  <td>{p.value}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Metrics</h2>
          <table class="grid kv">
            <tbody>
              {metrics.map((m) => (
                <tr>
                  <th>
                    <a href="#" onClick={(e) => (e.preventDefault(), setQuery({ metric: m.key }, true))}>
                      {m.key}
                    </a>
                  </th>
                  <td class="num">{fmt(m.value)}</td>
                  <td>
                    <Sparkline runId={id} metric={m.key} />
                  </td>
                  <td class="muted">step {m.step}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div>
          <h2>Tags</h2>
          <Tags tags={tags} onSet={(key, value) => act(() => mlflow.post("runs/set-tag", { run_id: id, key, value }))} onDelete={(key) => act(() => mlflow.post("runs/delete-tag", { run_id: id, key }))} />
          {(inputs?.dataset_inputs || []).length > 0 && (
            <>
              <h2>Datasets</h2>
              <ul>
                {inputs.dataset_inputs.map((d) => (
                  <li>
                    {d.dataset.name} <span class="muted">({d.dataset.digest})</span>
                  </li>
                ))}
              </ul>
            </>
          )}
          {(outputs?.model_outputs || inputs?.model_inputs || []).length > 0 && (
            <>
              <h2>Logged models</h2>
              <ul>
                {[...(outputs?.model_outputs || []), ...(inputs?.model_inputs || [])].map((m) => (
                  <li>
                    <code>{m.model_id}</code>
                  </li>
                ))}
              </ul>
            </>
          )}
        </div>
      </div>
      {metrics.length > 0 && (
        <>
          <h2>Chart</h2>
          <MetricChart runs={[{ id, name: info.run_name || id }]} metric={chart || metrics[0].key} />
        </>
      )}
      <h2>Artifacts</h2>
      <Artifacts
        runId={id}
        dir={query.get("adir") ?? (query.get("artifact") || "").split("/").slice(0, -1).join("/")}
        path={query.get("artifact") || ""}
      />
    </section>
  );
}

function Tags({ tags, onSet, onDelete }) {
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  return (
    <>
      <table class="grid kv">
        <tbody>
          {Object.entries(tags)
            .filter(([k]) => !k.startsWith("mlflow."))
            .map(([k, v]) => (
              <tr>
                <th>{k}</th>
                <td>{v}</td>
                <td>
                  <button class="link" aria-label={`Delete tag ${k}`} onClick={() => onDelete(k)}>
                    ✕
                  </button>
                </td>
              </tr>
            ))}
        </tbody>
      </table>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          if (key.trim()) onSet(key.trim(), value).then(() => (setKey(""), setValue("")));
        }}
      >
        <input aria-label="Tag key" placeholder="key" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        <input aria-label="Tag value" placeholder="value" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        <button type="submit">Set tag</button>
      </form>
    </>
  );
}

const TEXT = /\.(txt|log|md|py|json|ya?ml|csv|tsv|ini|cfg|toml|sh|html?)$|(^|\/)(MLmodel|MLproject|requirements\.txt|conda\.yaml)$/i;
const IMAGE = /\.(png|jpe?g|gif|svg|webp|bmp)$/i;

function Artifacts({ runId, dir, path }) {
  const list = useAsync(() => mlflow.get("artifacts/list", { run_id: runId, path: dir || undefined }), [runId, dir]);
  const up = dir.split("/").slice(0, -1).join("/");
  return (
    <div class="artifacts">
      <nav aria-label="Artifact files">
        <p class="muted">/{dir}</p>
        {dir && (
          <button class="link" onClick={() => setQuery({ adir: up, artifact: "" }, true)}>
            ..
          </button>
        )}
        <ErrorBox error={list.error} />
        <ul>
          {(list.data?.files || []).map((f) => (
            <li>
              <button
                class={`link${f.path === path ? " current" : ""}`}
                onClick={() => setQuery(f.is_dir ? { adir: f.path, artifact: "" } : { artifact: f.path }, true)}
              >
                {f.is_dir ? "📁 " : ""}
                {f.path.split("/").pop()}
              </button>
              {!f.is_dir && <span class="muted"> {fmt(Number(f.file_size))} B</span>}
            </li>
          ))}
        </ul>
      </nav>
      <div class="preview">{path && <Preview runId={runId} path={path} />}</div>
    </div>
  );
}

/** The first lines of a CSV as a table. */
export function csvRows(text, limit = 50) {
  return text
    .split(/\r?\n/)
    .filter(Boolean)
    .slice(0, limit)
    .map((line) => line.split(","));
}

function Preview({ runId, path }) {
  const url = artifactUrl(runId, path);
  const text = TEXT.test(path);
  const body = useAsync(
    () =>
      text
        ? fetch(url).then(async (r) => {
            if (!r.ok) throw new Error(`${r.status} ${(await r.text()).slice(0, 200)}`);
            const t = await r.text();
            return t.length > 200000 ? `${t.slice(0, 200000)}\n…` : t;
          })
        : Promise.resolve(null),
    [url],
  );
  return (
    <div class="file">
      <p>
        <strong>{path}</strong> <a href={url} download>
          Download
        </a>
      </p>
      <ErrorBox error={body.error} />
      {IMAGE.test(path) ? (
        <img src={url} alt={path} />
      ) : !text ? (
        <p class="muted">No preview for this kind of file.</p>
      ) : typeof body.data !== "string" ? null : /\.csv$/i.test(path) ? (
        <table class="grid csv">
          {csvRows(body.data).map((row, i) => (
            <tr>{row.map((c) => (i === 0 ? <th>{c}</th> : <td>{c}</td>))}</tr>
          ))}
        </table>
      ) : (
        <pre class="text">{/\.json$/i.test(path) ? pretty(body.data) : body.data}</pre>
      )}
    </div>
  );
}

function pretty(t) {
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return t;
  }
}
