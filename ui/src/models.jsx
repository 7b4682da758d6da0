// The registry: models, a model's versions with aliases, stages and tags, and a version's page:
// one timeline from its training run and logged model to the version, its stage changes and the
// aliases that came and went (plumb's registry history).
import { all, mlflow, plumb } from "./api.js";
import { href } from "./router.js";
import { ErrorBox, fmt, kv, Loading, useAsync, when } from "./util.jsx";

/** A version's logged model: MLflow's answers leave `model_id` out (its proto has the field,
 * its server does not fill it), but a logged model's version has `models:/<model_id>` as source. */
export function loggedModelId(v) {
  return v.model_id || (/^models:\/(m-[^/@]+)$/.exec(v.source || "") || [])[1] || "";
}

const modelHref = (name) => href(`/models/${encodeURIComponent(name)}`);
const versionHref = (name, v) => href(`/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(v)}`);

export function Models() {
  const list = useAsync(() => all("registered-models/search", { max_results: 1000 }, "registered_models", 50000, "GET"), []);
  if (list.loading && !list.data) return <Loading what="models" />;
  return (
    <section>
      <h1>Models</h1>
      <ErrorBox error={list.error} />
      <table class="grid">
        <thead>
          <tr>
            <th>Name</th>
            <th>Latest version</th>
            <th>Aliases</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {(list.data || []).map((m) => (
            <tr>
              <td>
                <a href={modelHref(m.name)}>{m.name}</a>
              </td>
              <td>{(m.latest_versions || []).map((v) => v.version).sort((a, b) => b - a)[0] || ""}</td>
              <td>{(m.aliases || []).map((a) => `@${a.alias} → v${a.version}`).join(", ")}</td>
              <td>{when(m.last_updated_timestamp)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function Model({ name }) {
  const model = useAsync(() => mlflow.get("registered-models/get", { name }), [name]);
  const versions = useAsync(() => all("model-versions/search", { filter: `name = '${name.replace(/'/g, "\\'")}'`, max_results: 1000 }, "model_versions", 50000, "GET"), [name]);
  if (model.loading && !model.data) return <Loading what="the model" />;
  if (model.error) return <ErrorBox error={model.error} />;
  const aliases = {};
  for (const a of model.data.registered_model.aliases || []) (aliases[a.version] ||= []).push(a.alias);
  return (
    <section>
      <p class="crumbs">
        <a href={href("/models")}>Models</a> / {name}
      </p>
      <h1>{name}</h1>
      <p>{model.data.registered_model.description}</p>
      <ErrorBox error={versions.error} />
      <table class="grid">
        <thead>
          <tr>
            <th>Version</th>
            <th>Aliases</th>
            <th>Stage</th>
            <th>Run</th>
            <th>Logged model</th>
            <th>Source</th>
            <th>Tags</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {(versions.data || [])
            .sort((a, b) => Number(b.version) - Number(a.version))
            .map((v) => (
              <tr>
                <td class="num">
                  <a href={versionHref(name, v.version)}>v{v.version}</a>
                </td>
                <td>{(aliases[v.version] || []).map((a) => `@${a}`).join(" ")}</td>
                <td>{v.current_stage}</td>
                <td>{v.run_id ? <a href={href(`/runs/${v.run_id}`)}>{v.run_id.slice(0, 8)}</a> : ""}</td>
                <td>
                  <code>{loggedModelId(v)}</code>
                </td>
                <td>
                  <code>{v.source}</code>
                </td>
                <td>{(v.tags || []).map((t) => `${t.key}=${t.value}`).join(", ")}</td>
                <td>{when(v.creation_timestamp)}</td>
              </tr>
            ))}
        </tbody>
      </table>
    </section>
  );
}

/** What a version's timeline is made of, oldest first: the training run (start, end), the
 * logged model, the version's registration, and plumb's record of the model's alias and stage
 * changes (`registry/history`) as they touched this version. An alias on the version with no
 * recorded arrival (set before plumb kept the record, or imported) closes it undated. */
export function timeline(version, run, logged, aliases, changes = []) {
  const v = String(version.version);
  const out = [];
  if (run) {
    const info = run.info;
    out.push({ at: info.start_time, what: "run", label: `Training run ${info.run_name || info.run_id} started` });
    if (info.end_time) out.push({ at: info.end_time, what: "run-end", label: `Training run ended ${info.status}` });
  }
  if (logged) out.push({ at: logged.info.creation_timestamp_ms, what: "logged-model", label: `Logged model ${logged.info.name || logged.info.model_id} created` });
  out.push({ at: version.creation_timestamp, what: "version", label: `Registered as ${version.name} v${version.version}` });
  const holder = {};
  const arrived = new Set();
  for (const c of changes) {
    const here = String(c.version) === v;
    if (c.kind === "stage" && here) out.push({ at: c.time_ms, what: "stage", label: `Stage changed to ${c.stage}` });
    if (c.kind === "alias_set") {
      if (here) {
        const from = holder[c.alias];
        out.push({ at: c.time_ms, what: "alias", label: `Alias @${c.alias} set here${from ? ` (moved from v${from})` : ""}` });
        arrived.add(c.alias);
      } else if (holder[c.alias] === v) {
        out.push({ at: c.time_ms, what: "alias-gone", label: `Alias @${c.alias} moved to v${c.version}` });
      }
      holder[c.alias] = String(c.version);
    }
    if (c.kind === "alias_removed") {
      if (here) out.push({ at: c.time_ms, what: "alias-gone", label: `Alias @${c.alias} removed` });
      delete holder[c.alias];
    }
  }
  out.sort((a, b) => Number(a.at || 0) - Number(b.at || 0));
  for (const a of aliases) if (!arrived.has(a)) out.push({ at: null, what: "alias", label: `Alias @${a} points here` });
  return out;
}

export function ModelVersion({ name, version }) {
  const data = useAsync(async () => {
    const [mv, model] = await Promise.all([
      mlflow.get("model-versions/get", { name, version }),
      mlflow.get("registered-models/get", { name }),
    ]);
    const v = mv.model_version;
    // The run or the logged model may have been deleted since: the page still shows the version.
    const [run, logged] = await Promise.all([
      v.run_id ? mlflow.get("runs/get", { run_id: v.run_id }).then((r) => r.run, () => null) : null,
      loggedModelId(v) ? mlflow.get(`logged-models/${encodeURIComponent(loggedModelId(v))}`).then((r) => r.model, () => null) : null,
    ]);
    const aliases = (model.registered_model.aliases || []).filter((a) => String(a.version) === String(v.version)).map((a) => a.alias);
    // plumb's record of alias and stage changes; a server without it leaves the timeline undated.
    const changes = await plumb.get("registry/history", { name }).then((h) => h.changes || [], () => []);
    return { v, run, logged, aliases, changes };
  }, [name, version]);
  if (data.loading && !data.data) return <Loading what="the model version" />;
  if (data.error) return <ErrorBox error={data.error} />;
  const { v, run, logged, aliases, changes } = data.data;
  const metrics = run ? (run.data.metrics || []).slice().sort((a, b) => a.key.localeCompare(b.key)) : [];
  return (
    <section>
      <p class="crumbs">
        <a href={href("/models")}>Models</a> / <a href={modelHref(name)}>{name}</a> / v{v.version}
      </p>
      <h1>
        {name} v{v.version} {aliases.map((a) => <span class="badge">@{a}</span>)}
      </h1>
      <dl class="overview">
        <dt>Stage</dt>
        <dd>{v.current_stage || "None"}</dd>
        <dt>Status</dt>
        <dd>{v.status}</dd>
        <dt>Training run</dt>
        <dd>{v.run_id ? <a href={href(`/runs/${v.run_id}`)}>{run?.info.run_name || v.run_id}</a> : "none"}{v.run_id && !run ? " (not found)" : ""}</dd>
        <dt>Logged model</dt>
        <dd>
          {loggedModelId(v) ? <code>{loggedModelId(v)}</code> : "none"}
          {logged && logged.info.source_run_id ? (
            <>
              {" "}from run <a href={href(`/runs/${logged.info.source_run_id}`)}>{logged.info.source_run_id.slice(0, 8)}</a>
            </>
          ) : null}
        </dd>
        <dt>Source</dt>
        <dd>
          <code>{v.source}</code>
        </dd>
        <dt>Created by</dt>
        <dd>{v.user_id || ""}</dd>
        <dt>Description</dt>
        <dd>{v.description || ""}</dd>
      </dl>
      <h2>Timeline</h2>
      <ol class="timeline">
        {timeline(v, run, logged, aliases, changes).map((e) => (
          <li class={e.what}>
            <time>{e.at ? when(e.at) : "now"}</time> {e.label}
          </li>
        ))}
      </ol>
      <div class="columns">
        <div>
          <h2>Tags</h2>
          <table class="grid kv">
            <tbody>
              {Object.entries(kv(v.tags)).map(([k, val]) => (
                <tr>
                  <th>{k}</th>
                  <td>{val}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div>
          <h2>Training run's metrics</h2>
          <table class="grid kv">
            <tbody>
              {metrics.map((m) => (
                <tr>
                  <th>{m.key}</th>
                  <td class="num">{fmt(m.value)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
    </section>
  );
}
