// The registry: models, a model's versions with aliases, stages and tags, each version linked
// to its run (training run -> version -> alias).
import { all, mlflow } from "./api.js";
import { href } from "./router.js";
import { ErrorBox, Loading, useAsync, when } from "./util.jsx";

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
                <a href={href(`/models/${encodeURIComponent(m.name)}`)}>{m.name}</a>
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
                <td class="num">v{v.version}</td>
                <td>{(aliases[v.version] || []).map((a) => `@${a}`).join(" ")}</td>
                <td>{v.current_stage}</td>
                <td>{v.run_id ? <a href={href(`/runs/${v.run_id}`)}>{v.run_id.slice(0, 8)}</a> : ""}</td>
                <td>
                  <code>{v.model_id || ""}</code>
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
