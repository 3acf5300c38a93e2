"""The onnxruntime half of `cargo xtask bench edge`: the same ONNX and the same single row
as the in-process benchmark (`edge/inference/examples/edge_bench.rs`), through
`InferenceSession.run` on the CPU provider.

usage: ort_bench.py MODEL_ONNX INPUTS [ITERATIONS [INPUTS_JSON]]
INPUTS_JSON (an imported model's): a document whose `inputs` are Open Inference Protocol
tensors; the first row of each is fed, by name (as `edge_bench` feeds it).
Prints one JSON object: session creation (best and median) and run latency percentiles,
in microseconds, with the version.
"""

import json
import sys
import time

import numpy as np
import onnxruntime

path, f = sys.argv[1], int(sys.argv[2])
iterations = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
model = open(path, "rb").read()
options = onnxruntime.SessionOptions()
# One thread, as one edge request gets: the in-process benchmark runs on one thread too.
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
loads = []
for _ in range(7):
    t = time.perf_counter()
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    loads.append((time.perf_counter() - t) * 1e6)
loads.sort()
output = session.get_outputs()[0].name
if len(sys.argv) > 4:
    doc = json.load(open(sys.argv[4]))
    kinds = {"FP32": np.float32, "INT64": np.int64, "BYTES": object}
    feeds = {}
    for i in doc["inputs"]:
        width = i["shape"][1] if len(i["shape"]) > 1 else 1
        values = [np.nan if v is None else v for v in i["data"][:width]]
        feeds[i["name"]] = np.array([values], dtype=kinds[i["datatype"]])
else:
    name = session.get_inputs()[0].name
    feeds = {name: np.array([[(j * 7 % 11) * 0.5 for j in range(f)]], dtype=np.float32)}
for _ in range(200):
    session.run([output], feeds)
times = []
for _ in range(iterations):
    t = time.perf_counter()
    out = session.run([output], feeds)
    times.append((time.perf_counter() - t) * 1e6)
times.sort()
started = time.perf_counter()
for _ in range(iterations):
    session.run([output], feeds)
mean_us = (time.perf_counter() - started) * 1e6 / iterations


def pct(p):
    return times[min(len(times) - 1, round((len(times) - 1) * p))]


print(json.dumps({
    "version": onnxruntime.__version__,
    "iterations": iterations,
    "session_us_best": round(loads[0], 1),
    "session_us_median": round(loads[len(loads) // 2], 1),
    "run_us_p50": round(pct(0.5), 2),
    "run_us_p99": round(pct(0.99), 2),
    "run_us_mean": round(mean_us, 2),
    "runs_per_s": round(1e6 / mean_us),
    "score": float(np.asarray(out[0]).ravel()[-1]),
}))
