#!/usr/bin/env python3
"""SciPy's answers for the drift statistics that `functions/drift/src/stats.rs` ports.

Usage: python scipy_reference.py CASES.json

CASES.json holds lists of input pairs, any key may be missing:

    {"ks": [[a, b], ...], "chisquare": [[observed, expected], ...],
     "wasserstein": [[u, v], ...], "jensenshannon": [[p, q], ...]}

Prints one JSON object with a list per key, in the order of the cases:

    {"scipy_version": "1.17.1",
     "ks": [{"statistic": s, "pvalue": p, "method": "exact" | "asymp"}, ...],
     "chisquare": [{"statistic": s, "pvalue": p, "dof": k - 1}, ...],
     "wasserstein": [distance, ...],
     "jensenshannon": [distance, ...]}

Calls: scipy.stats.ks_2samp(a, b) (two-sided, method 'auto'; "method" is "asymp" when
max(n1, n2) > 10000 or when SciPy warned that the exact computation failed),
scipy.stats.chisquare(observed, expected) (ddof=0), scipy.stats.wasserstein_distance(u, v)
and scipy.spatial.distance.jensenshannon(p, q) (natural logarithm).

Floats are printed with repr (shortest round-trip). A value that is NaN or infinite is
printed as null, since JSON has no such numbers. Where SciPy raises (e.g. chi-square sums
that disagree, an empty sample), the ks/chisquare entry is {"error": message} and the
wasserstein/jensenshannon entry is null.
"""

import json
import math
import sys
import warnings

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _ks(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = stats.ks_2samp(a, b)
    fell_back = any("Exact calculation unsuccessful" in str(w.message) for w in caught)
    exact = max(len(a), len(b)) <= 10000 and not fell_back
    return {
        "statistic": _num(res.statistic),
        "pvalue": _num(res.pvalue),
        "method": "exact" if exact else "asymp",
    }


def _chisquare(observed, expected):
    observed = np.asarray(observed, dtype=float)
    expected = np.asarray(expected, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.chisquare(observed, expected)
    return {
        "statistic": _num(res.statistic),
        "pvalue": _num(res.pvalue),
        "dof": int(observed.shape[0]) - 1,
    }


def _wasserstein(u, v):
    return _num(stats.wasserstein_distance(np.asarray(u, dtype=float), np.asarray(v, dtype=float)))


def _jensenshannon(p, q):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _num(distance.jensenshannon(np.asarray(p, dtype=float), np.asarray(q, dtype=float)))


def _run(fn, pair, on_error):
    try:
        return fn(*pair)
    except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
        return on_error(exc)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: scipy_reference.py CASES.json\n")
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        cases = json.load(fh)

    def as_error(exc):
        return {"error": str(exc)}

    def as_null(_exc):
        return None

    out = {"scipy_version": scipy.__version__}
    if "ks" in cases:
        out["ks"] = [_run(_ks, pair, as_error) for pair in cases["ks"]]
    if "chisquare" in cases:
        out["chisquare"] = [_run(_chisquare, pair, as_error) for pair in cases["chisquare"]]
    if "wasserstein" in cases:
        out["wasserstein"] = [_run(_wasserstein, pair, as_null) for pair in cases["wasserstein"]]
    if "jensenshannon" in cases:
        out["jensenshannon"] = [
            _run(_jensenshannon, pair, as_null) for pair in cases["jensenshannon"]
        ]
    json.dump(out, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
