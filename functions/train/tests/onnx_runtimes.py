"""Runs exported models in onnxruntime and in ONNX's reference evaluator (onnx.reference).

Usage: python onnx_runtimes.py DIR. DIR holds, per model NAME, `NAME.onnx` and `NAME.json`
(the input rows, row-major lists with null for a missing value). Prints one JSON object:
{NAME: {"onnxruntime": rows, "reference": rows, "versions": {...}}}, the rows being the
graph's first output (the one the edge serves).
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime
from onnx.reference import ReferenceEvaluator


def main(folder):
    out = {}
    for path in sorted(pathlib.Path(folder).glob("*.onnx")):
        rows = json.loads(path.with_suffix(".json").read_text())
        x = np.array(
            [[np.nan if v is None else v for v in row] for row in rows], dtype=np.float32
        )
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        name = model.graph.input[0].name
        output = model.graph.output[0].name
        session = onnxruntime.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        ort = session.run([output], {name: x})[0]
        ref = ReferenceEvaluator(model).run([output], {name: x})[0]
        out[path.stem] = {
            "onnxruntime": np.asarray(ort, dtype=np.float64).tolist(),
            "reference": np.asarray(ref, dtype=np.float64).tolist(),
            "versions": {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__},
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
