#!/usr/bin/env python3
# The user's seed scenario (shared/mission), verbatim except: the tracking URI comes from the
# environment, and with a 3.x client log_model uses serialization_format='cloudpickle'
# (3.17's default skops format refuses RandomForest even on MLflow's own server).
import os

import mlflow
import mlflow.sklearn
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.metrics import accuracy_score, precision_score, recall_score, f1_score

mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
mlflow.set_experiment('iris-classification')
X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
with mlflow.start_run(run_name='rf-baseline'):
    model = RandomForestClassifier(n_estimators=50, random_state=42)
    model.fit(X_train, y_train)
    y_pred = model.predict(X_test)
    accuracy = accuracy_score(y_test, y_pred)
    precision = precision_score(y_test, y_pred, average='weighted')
    recall = recall_score(y_test, y_pred, average='weighted')
    f1 = f1_score(y_test, y_pred, average='weighted')
    mlflow.log_metric('accuracy', accuracy)
    mlflow.log_metric('precision', precision)
    mlflow.log_metric('recall', recall)
    mlflow.log_metric('f1_score', f1)
    mlflow.log_param('n_estimators', 50)
    mlflow.log_param('random_state', 42)
    if mlflow.__version__.startswith("2."):
        mlflow.sklearn.log_model(model, 'model')
    else:
        mlflow.sklearn.log_model(model, 'model', serialization_format='cloudpickle')
    print(f'Run ID: {mlflow.active_run().info.run_id}')
    print(f'Accuracy: {accuracy:.4f}')
mlflow.end_run()
