"""The reference side of `cargo xtask bench drift`: Evidently's DataDriftPreset, and scipy's
ks_2samp over the same columns, on the Parquet tables `mlpipe bench-drift --mode generate`
wrote. One mode per process, so each reports its own peak memory.

Usage: python drift_reference.py DIR evidently|scipy
Prints one JSON object: secs (reading included), check_secs, peak_rss (bytes), drifted.
"""

import json
import resource
import sys
import time


def main(argv):
    directory, mode = argv[1], argv[2]
    t0 = time.perf_counter()
    import pandas as pd

    reference = pd.read_parquet(f"{directory}/reference.parquet")
    current = pd.read_parquet(f"{directory}/current.parquet")
    t1 = time.perf_counter()
    drifted = None
    if mode == "evidently":
        from evidently import Report
        from evidently.presets import DataDriftPreset

        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        result = snapshot.dict()
        for metric in result.get("metrics", []):
            value = metric.get("value")
            if isinstance(value, dict) and "count" in value:
                drifted = value["count"]
                break
    elif mode == "scipy":
        from scipy import stats

        drifted = 0
        for column in reference.columns:
            if stats.ks_2samp(reference[column].to_numpy(), current[column].to_numpy()).pvalue < 0.05:
                drifted += 1
    else:
        raise SystemExit(f"unknown mode {mode}")
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "secs": t2 - t0,
                "check_secs": t2 - t1,
                "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "drifted": drifted,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv)
