"""Reference side of `cargo xtask bench quality`: scikit-learn on the same exported table.

  quality_reference.py FILE LABEL TASK

FILE is a training table mlpipe exported (`mlpipe features training-set`) or prepared, with
its `__split` column; TASK is binary, multiclass or regression. Fits, on the train +
validation rows, scikit-learn's HistGradientBoosting (defaults) and a scaled linear model
(mean imputation + standard scaling + LogisticRegression, or LinearRegression), scores both
on the test rows, and prints one JSON object: `{hgb,linear}_{metric}` for the task's metrics
(binary: roc_auc, accuracy; multiclass: accuracy, log_loss; regression: r2, rmse).
"""

import json
import sys

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main(path, label, task):
    df = pd.read_parquet(path)
    df = df[df[label].notna()]
    feats = [c for c in df.columns if c not in (label, "__split")
             and (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))]
    x = df[feats].astype("float64").to_numpy()
    y = df[label].to_numpy()
    if task == "binary":
        y = y.astype(int) if y.dtype != bool else y.astype(int)
    elif task == "regression":
        y = y.astype("float64")
    else:
        y = y.astype(str)
    split = df["__split"].to_numpy()
    fit, test = split != "test", split == "test"
    out = {"rows_fit": int(fit.sum()), "rows_test": int(test.sum()), "features": len(feats)}
    if task == "regression":
        models = {
            "hgb": HistGradientBoostingRegressor(),
            "linear": make_pipeline(SimpleImputer(), StandardScaler(), LinearRegression()),
        }
    else:
        models = {
            "hgb": HistGradientBoostingClassifier(),
            "linear": make_pipeline(SimpleImputer(), StandardScaler(),
                                    LogisticRegression(max_iter=5000)),
        }
    for name, model in models.items():
        model.fit(x[fit], y[fit])
        if task == "regression":
            p = model.predict(x[test])
            out[f"{name}_r2"] = float(r2_score(y[test], p))
            out[f"{name}_rmse"] = float(np.sqrt(mean_squared_error(y[test], p)))
        else:
            proba = model.predict_proba(x[test])
            out[f"{name}_accuracy"] = float(accuracy_score(y[test], model.predict(x[test])))
            if task == "binary":
                out[f"{name}_roc_auc"] = float(roc_auc_score(y[test], proba[:, 1]))
            else:
                out[f"{name}_log_loss"] = float(
                    log_loss(y[test], np.clip(proba, 1e-15, 1), labels=model.classes_))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
