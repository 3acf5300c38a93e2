"""Plain-polars reference for `cargo xtask bench features` (Python polars from PyPI, the same
engine as the Rust crate). Prints one JSON line.

windows: per-card trailing windows with `rolling(..., closed="left")` (events strictly before
         each row), the same aggregates as examples/fraud's card_activity view.
join:    `join_asof(strategy="backward", allow_exact_matches=False)` of N label events against
         the per-event feature rows computed by `windows` (only the join is timed).
"""

import json
import random
import resource
import sys
import time

import polars as pl


def read(csv):
    return pl.read_csv(csv).with_columns(
        pl.col("timestamp").str.to_datetime(time_zone="UTC", time_unit="us")
    )


def windows(df):
    df = df.sort(["card_id", "timestamp"])
    parts = []
    for period, aggs in [
        ("1h", [pl.len().alias("tx_count_1h")]),
        ("24h", [pl.len().alias("tx_count_24h"), pl.col("amount").sum().alias("amount_sum_24h")]),
        ("7d", [pl.col("amount").max().alias("amount_max_7d"),
                pl.col("merchant_id").n_unique().alias("merchants_7d")]),
        ("30d", [pl.col("amount").mean().alias("amount_mean_30d"),
                 pl.col("amount").std().alias("amount_std_30d"),
                 pl.col("country").n_unique().alias("countries_30d")]),
    ]:
        out = df.rolling(index_column="timestamp", period=period, group_by="card_id",
                         closed="left").agg(aggs)
        parts.append(out.drop(["card_id", "timestamp"]))
    since = df.select(
        (pl.col("timestamp").diff().over("card_id").dt.total_microseconds() / 1e6)
        .alias("seconds_since_previous"))
    return pl.concat([df] + parts + [since], how="horizontal")


def main():
    csv, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    df = read(csv)
    if mode == "windows":
        t = time.perf_counter()
        out = windows(df)
        secs = time.perf_counter() - t
        rows = out.height
    elif mode == "join":
        feats = windows(df).sort("timestamp")
        cards = df["card_id"].unique().sort().to_list()
        lo, hi = df["timestamp"].min(), df["timestamp"].max()
        rnd = random.Random(7)
        span = (hi - lo).total_seconds()
        labels = pl.DataFrame({
            "card_id": [rnd.choice(cards) for _ in range(n)],
            "timestamp": [lo + (hi - lo) * rnd.random() for _ in range(n)],
        }).with_columns(pl.col("timestamp").dt.cast_time_unit("us")).sort("timestamp")
        assert span > 0
        t = time.perf_counter()
        out = labels.join_asof(feats, on="timestamp", by="card_id", strategy="backward",
                               allow_exact_matches=False)
        secs = time.perf_counter() - t
        rows = out.height
    else:
        raise SystemExit(f"unknown mode {mode}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"mode": mode, "rows": rows, "secs": secs, "peak_rss_bytes": peak}))


if __name__ == "__main__":
    main()
