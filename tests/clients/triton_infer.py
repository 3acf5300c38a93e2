"""Calls an Open Inference Protocol server with NVIDIA's tritonclient, default settings.

usage: triton_infer.py HOST:PORT ROWS_JSON [API_KEY]
       (ROWS_JSON: [[f, ...], ...], null = missing; API_KEY sent as a bearer token)
Prints {"probability": [...], "label": [...]} from model `fraud`.
"""

import json
import sys

import numpy as np
import tritonclient.http as httpclient

url, rows = sys.argv[1], json.loads(sys.argv[2])
headers = {"Authorization": f"Bearer {sys.argv[3]}"} if len(sys.argv) > 3 else None
x = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float32)
client = httpclient.InferenceServerClient(url=url)
assert client.is_server_live() and client.is_server_ready()
assert client.is_model_ready("fraud", headers=headers)
meta = client.get_model_metadata("fraud", headers=headers)
assert meta["inputs"][0]["shape"] == [-1, x.shape[1]], meta
inp = httpclient.InferInput("features", list(x.shape), "FP32")
inp.set_data_from_numpy(x)  # binary_data=True by default
# No outputs requested: the client asks for binary outputs.
result = client.infer("fraud", [inp], headers=headers)
prob = result.as_numpy("probability")
label = result.as_numpy("label")
print(json.dumps({
    "probability": [float(p) for p in prob],
    "label": [l.decode() if isinstance(l, bytes) else str(l) for l in label],
}))
