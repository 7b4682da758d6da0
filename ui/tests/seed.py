"""Data for the browser tests, logged by the official client: an experiment of 40 runs (two
environments, a few runs missing the `env` tag), a learning-rate sweep with accuracy and loss
histories, artifacts of each previewable kind on the best run, and that run's model registered
as `iris-classifier` v1 with the alias `champion`. Prints the ids as JSON."""
import base64
import json
import math
import os
import sys

import mlflow
from mlflow import MlflowClient

mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
client = MlflowClient()
exp = mlflow.set_experiment("ui-demo").experiment_id
mlflow.set_experiment("other-experiment")
mlflow.set_experiment("ui-demo")
runs = []
for i in range(40):
    lr = [0.001, 0.01, 0.1, 0.3][i % 4]
    with mlflow.start_run(run_name=f"sweep-{i:02d}") as run:
        mlflow.log_params({"lr": lr, "layers": 2 + i % 3, "optimizer": "adam"})
        if i % 10 != 7:
            mlflow.set_tag("env", "production" if i % 2 else "training")
        acc = 0.5 + 0.45 * (1 - math.exp(-lr * 30)) - 0.002 * (i % 5) - 0.0001 * i
        points = [mlflow.entities.Metric("accuracy", acc * (1 - math.exp(-s / 8)), 1_700_000_000_000 + s * 1000, s)
                  for s in range(60)]
        points += [mlflow.entities.Metric("loss", 2 * math.exp(-s / 10) + 0.05 * (i % 3), 1_700_000_000_000 + s * 1000, s)
                   for s in range(60)]
        client.log_batch(run.info.run_id, metrics=points)
        runs.append((acc, run.info.run_id))
best = max(runs)[1]
with mlflow.start_run(run_id=best):
    mlflow.log_text("hello from the best run\nsecond line\n", "notes.txt")
    mlflow.log_dict({"threshold": 0.9, "classes": ["a", "b"]}, "config.json")
    mlflow.log_text("feature,importance\npetal_length,0.61\npetal_width,0.3\n", "data/importance.csv")
    mlflow.log_text("artifact_path: model\nflavors:\n  python_function: {}\n", "model/MLmodel")
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAABytg0kAAAAFklEQVR4nGP8z8DwnwEIGBn+MzAwMAAAJAQDAdeF5VwAAAAASUVORK5CYII=")
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "plumb-ui-dot.png")
    with open(path, "wb") as f:
        f.write(png)
    mlflow.log_artifact(path, "images")


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input


# The best run's model, registered (MLflow 3: a logged model, then a version pointing at it)
# and aliased: the version page's timeline.
with mlflow.start_run(run_id=best):
    info = mlflow.pyfunc.log_model(name="classifier", python_model=Echo(), registered_model_name="iris-classifier")
client.set_registered_model_alias("iris-classifier", "champion", info.registered_model_version)
client.set_model_version_tag("iris-classifier", info.registered_model_version, "validated", "yes")
print(json.dumps({"experiment_id": exp, "best": best, "runs": [r for _, r in runs], "model_id": info.model_id}))
