"""Reference side of `cargo xtask bench train`: scikit-learn on the same tables and splits.

  prepare OUT_DIR            write fair.parquet (statsmodels' bundled `fair` dataset, label:
                             any affair) and synthetic.parquet (100,000 training rows x 20
                             features, 10% positives, some values missing), each with a
                             seeded `__split` column (train / validation / test)
  fit FILE LABEL METRIC N    fit HistGradientBoostingClassifier and LogisticRegression with
                             default settings on train + validation, score on test, and time
                             N HistGradientBoosting fits (the number of models mlpipe's
                             search fitted); prints one JSON object
"""

import json
import resource
import sys
import time

import numpy as np
import pandas as pd


def split_column(n, seed, stratify=None):
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    out = np.where(u < 0.6, "train", np.where(u < 0.8, "validation", "test"))
    return out


def prepare(out_dir):
    import statsmodels.api as sm
    from sklearn.datasets import make_classification

    fair = sm.datasets.fair.load_pandas().data
    fair = fair.rename(columns=str.lower)
    fair["y"] = (fair.pop("affairs") > 0).astype(int)
    fair["__split"] = split_column(len(fair), 7)
    fair.to_parquet(f"{out_dir}/fair.parquet", index=False)

    n_train = 100_000
    n = int(n_train / 0.6)
    x, y = make_classification(
        n_samples=n, n_features=20, n_informative=10, n_redundant=4,
        weights=[0.9, 0.1], flip_y=0.02, class_sep=0.8, random_state=11,
    )
    rng = np.random.default_rng(3)
    x[rng.random(x.shape) < 0.05] = np.nan
    syn = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(20)])
    syn["y"] = y
    # Exactly 100,000 training rows; the rest split between validation and test.
    split = np.array(["train"] * n_train + ["validation"] * ((n - n_train) // 2)
                     + ["test"] * (n - n_train - (n - n_train) // 2))
    rng.shuffle(split)
    syn["__split"] = split
    syn.to_parquet(f"{out_dir}/synthetic.parquet", index=False)


def features_of(df, label):
    return [c for c in df.columns
            if c not in (label, "__split") and pd.api.types.is_numeric_dtype(df[c])
            and not pd.api.types.is_bool_dtype(df[c])] + \
           [c for c in df.columns if c not in (label, "__split") and pd.api.types.is_bool_dtype(df[c])]


def fit(path, label, metric, n_fits):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = pd.read_parquet(path)
    df = df[df[label].notna()]
    feats = features_of(df, label)
    x = df[feats].astype("float64").to_numpy()
    y = df[label].astype("int64").to_numpy() if df[label].dtype != bool else df[label].to_numpy().astype(int)
    split = df["__split"].to_numpy()
    fit_rows = split != "test"
    test = split == "test"
    out = {"rows_fit": int(fit_rows.sum()), "rows_test": int(test.sum()), "features": len(feats)}

    def score(prefix, p):
        out[f"{prefix}_roc_auc"] = float(roc_auc_score(y[test], p))
        out[f"{prefix}_pr_auc"] = float(average_precision_score(y[test], p))
        out[f"{prefix}_log_loss"] = float(log_loss(y[test], np.clip(p, 1e-15, 1 - 1e-15)))

    t = time.perf_counter()
    hgb = HistGradientBoostingClassifier().fit(x[fit_rows], y[fit_rows])
    out["hgb_fit_secs"] = time.perf_counter() - t
    score("hgb", hgb.predict_proba(x[test])[:, 1])
    # Logistic regression needs complete, scaled inputs: mean imputation + scaling, as
    # mlpipe's linear family does inside its graph.
    lr = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression())
    lr.fit(x[fit_rows], y[fit_rows])
    score("lr", lr.predict_proba(x[test])[:, 1])
    best = max(out["hgb_" + metric], out["lr_" + metric]) if metric != "log_loss" else \
        min(out["hgb_log_loss"], out["lr_log_loss"])
    out["best_" + metric] = best
    if n_fits > 0:
        train = split == "train"
        t = time.perf_counter()
        for i in range(n_fits):
            HistGradientBoostingClassifier(random_state=i).fit(x[train], y[train])
        out["hgb_n_fits"] = n_fits
        out["hgb_n_fits_secs"] = time.perf_counter() - t
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    else:
        fit(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
