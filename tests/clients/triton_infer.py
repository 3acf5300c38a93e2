"""Calls an Open Inference Protocol server with NVIDIA's tritonclient, default settings.

usage: triton_infer.py HOST:PORT ROWS_JSON   (ROWS_JSON: [[f, ...], ...], null = missing)
Prints {"probability": [...], "label": [...]} from model `fraud`.
"""

import json
import sys

import numpy as np
import tritonclient.http as httpclient

url, rows = sys.argv[1], json.loads(sys.argv[2])
x = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float32)
client = httpclient.InferenceServerClient(url=url)
assert client.is_server_live() and client.is_server_ready()
assert client.is_model_ready("fraud")
meta = client.get_model_metadata("fraud")
assert meta["inputs"][0]["shape"] == [-1, x.shape[1]], meta
inp = httpclient.InferInput("features", list(x.shape), "FP32")
inp.set_data_from_numpy(x)  # binary_data=True by default
# No outputs requested: the client asks for binary outputs.
result = client.infer("fraud", [inp])
prob = result.as_numpy("probability")
label = result.as_numpy("label")
print(json.dumps({
    "probability": [float(p) for p in prob],
    "label": [l.decode() if isinstance(l, bytes) else str(l) for l in label],
}))
