// plumb's web UI: a single page over the REST API (MLflow's under /ajax-api, plumb's under
// /ajax-api/2.0/plumb). Hash routes: #/ (experiments), #/experiments/<id> (runs),
// #/runs/<id>, #/compare?runs=a,b, #/models[/<name>[/versions/<v>]], #/monitors[/<name>].
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "./style.css";
import { Compare } from "./compare.jsx";
import { Experiments } from "./experiments.jsx";
import { Model, Models, ModelVersion } from "./models.jsx";
import { Monitor, Monitors } from "./monitors.jsx";
import { href, useRoute } from "./router.js";
import { Run } from "./run.jsx";
import { Runs } from "./runs.jsx";

function Page({ route }) {
  const [a, b, c, d] = route.parts;
  if (!a) return <Experiments query={route.query} />;
  if (a === "experiments" && b) return <Runs id={b} query={route.query} />;
  if (a === "runs" && b) return <Run id={b} query={route.query} />;
  if (a === "compare") return <Compare query={route.query} />;
  if (a === "models" && b && c === "versions" && d) return <ModelVersion name={b} version={d} />;
  if (a === "models") return b ? <Model name={b} /> : <Models />;
  if (a === "monitors") return b ? <Monitor name={b} /> : <Monitors />;
  return <p>No page here. <a href={href("/")}>Experiments</a></p>;
}

function App() {
  const route = useRoute();
  const [theme, setTheme] = useState(localStorage.getItem("plumb-theme") || "auto");
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("plumb-theme", theme);
  }, [theme]);
  const at = route.parts[0] || "experiments";
  const link = (to, label, key) => (
    <a href={href(to)} aria-current={at === key || (key === "experiments" && ["runs", "compare"].includes(at)) ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <header>
        <a class="brand" href={href("/")}>
          plumb
        </a>
        <nav>
          {link("/", "Experiments", "experiments")}
          {link("/models", "Models", "models")}
          {link("/monitors", "Monitors", "monitors")}
        </nav>
        <select aria-label="Theme" value={theme} onChange={(e) => setTheme(e.currentTarget.value)}>
          <option value="auto">Auto</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      </header>
      <main>
        <Page route={route} />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app"));
