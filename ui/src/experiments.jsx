// The experiments list: search, create, rename, delete and restore.
import { useState } from "preact/hooks";
import { all, mlflow } from "./api.js";
import { href, setQuery } from "./router.js";
import { ErrorBox, Loading, useAsync, when } from "./util.jsx";

export function Experiments({ query }) {
  const search = query.get("q") || "";
  const deleted = query.get("view") === "deleted";
  const [error, setError] = useState();
  const [name, setName] = useState("");
  const [editing, setEditing] = useState(null);
  const list = useAsync(
    () =>
      all(
        "experiments/search",
        {
          max_results: 1000,
          view_type: deleted ? "DELETED_ONLY" : "ACTIVE_ONLY",
          filter: search ? `name ILIKE '%${search.replace(/'/g, "\\'")}%'` : undefined,
          order_by: ["last_update_time DESC"],
        },
        "experiments",
      ),
    [search, deleted],
  );
  const act = async (f) => {
    setError(undefined);
    try {
      await f();
      list.reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section>
      <h1>Experiments</h1>
      <div class="toolbar">
        <input
          type="search"
          aria-label="Search experiments"
          placeholder="Search by name"
          value={search}
          onInput={(e) => setQuery({ q: e.currentTarget.value }, true)}
        />
        <label>
          <input type="checkbox" checked={deleted} onChange={(e) => setQuery({ view: e.currentTarget.checked ? "deleted" : "" })} /> deleted
        </label>
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            if (name.trim()) act(() => mlflow.post("experiments/create", { name: name.trim() }).then(() => setName("")));
          }}
        >
          <input aria-label="New experiment name" placeholder="New experiment" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          <button type="submit">Create</button>
        </form>
      </div>
      <ErrorBox error={error || list.error} />
      {list.loading && !list.data ? (
        <Loading what="experiments" />
      ) : (
        <table class="grid">
          <thead>
            <tr>
              <th>Name</th>
              <th>ID</th>
              <th>Last update</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(list.data || []).map((x) => (
              <tr key={x.experiment_id}>
                <td>
                  {editing === x.experiment_id ? (
                    <form
                      class="inline"
                      onSubmit={(e) => {
                        e.preventDefault();
                        const v = new FormData(e.currentTarget).get("name");
                        act(() => mlflow.post("experiments/update", { experiment_id: x.experiment_id, new_name: v })).then(() => setEditing(null));
                      }}
                    >
                      <input name="name" aria-label="New name" value={x.name} autoFocus />
                      <button type="submit">Save</button>
                      <button type="button" onClick={() => setEditing(null)}>
                        Cancel
                      </button>
                    </form>
                  ) : (
                    <a href={href(`/experiments/${x.experiment_id}`)}>{x.name}</a>
                  )}
                </td>
                <td class="num">{x.experiment_id}</td>
                <td>{when(x.last_update_time)}</td>
                <td class="actions">
                  {deleted ? (
                    <button onClick={() => act(() => mlflow.post("experiments/restore", { experiment_id: x.experiment_id }))}>Restore</button>
                  ) : (
                    <>
                      <button onClick={() => setEditing(x.experiment_id)}>Rename</button>
                      <button onClick={() => confirm(`Delete experiment '${x.name}'?`) && act(() => mlflow.post("experiments/delete", { experiment_id: x.experiment_id }))}>
                        Delete
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
