"""Models exported by other tools, for bring-your-own-ONNX (`mlpipe/tests/import.rs`):
skl2onnx, onnxmltools (LightGBM, XGBoost), and PyTorch- and TensorFlow-style float graphs built
with onnx.helper.

usage: skl2onnx_models.py OUT_DIR

For each model NAME this writes OUT_DIR/NAME.onnx (skl2onnx's export with its defaults,
ZipMap included, or a PyTorch-style float graph built with onnx.helper) and OUT_DIR/NAME.json:
the task and classes, Open Inference Protocol input tensors for held-out rows, and
onnxruntime's outputs on the original file for those rows (`probabilities` [N, k] in class
order, or `values` [N]). `label_encoder.onnx` uses an operator mlpipe does not run
(LabelEncoder): import must refuse it by name.
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn, to_onnx
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR

OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
RNG = np.random.default_rng(7)


def tensor(name, values, datatype):
    values = np.asarray(values)
    if datatype == "BYTES":
        data = [str(v) for v in values.reshape(-1)]
    elif datatype == "INT64":
        data = [int(v) for v in values.reshape(-1)]
    else:
        data = [None if np.isnan(v) else float(v) for v in values.reshape(-1)]
    return {"name": name, "datatype": datatype, "shape": list(values.shape), "data": data}


def expected(path, feeds, classes):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    if classes is None:
        return {"values": np.asarray(outs[0], dtype=np.float64).reshape(-1).tolist()}
    probs = outs[1]
    if isinstance(probs, list):  # ZipMap: one {class: probability} map per row
        keys = list(probs[0].keys())
        order = [keys[[str(k) for k in keys].index(c)] for c in classes]
        probs = [[row[k] for k in order] for row in probs]
    return {"probabilities": np.asarray(probs, dtype=np.float64).tolist()}


def save(name, model, feeds, inputs, classes, task, extra=None):
    path = OUT / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    doc = {"task": task, "classes": classes, "inputs": inputs}
    doc.update(expected(path, feeds, classes))
    doc.update(extra or {})
    (OUT / f"{name}.json").write_text(json.dumps(doc))


def float_model(name, estimator, x, y, task, missing=False):
    xtr, xte, ytr, _ = train_test_split(x, y, test_size=40, random_state=0)
    estimator.fit(xtr, ytr)
    xte = xte.astype(np.float32)
    if missing:
        xte[RNG.random(xte.shape) < 0.05] = np.nan
    model = to_onnx(estimator, initial_types=[("X", FloatTensorType([None, x.shape[1]]))])
    classes = None if task == "regression" else [str(c) for c in estimator.classes_]
    save(name, model, {"X": xte}, [tensor("X", xte, "FP32")], classes, task)


cancer = load_breast_cancer()
iris = load_iris()
diabetes = load_diabetes()

float_model(
    "logreg",
    make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=2000)),
    cancer.data,
    cancer.target,
    "binary-classification",
    missing=True,
)
float_model(
    "forest",
    RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0),
    iris.data,
    iris.target,
    "multiclass-classification",
)
float_model(
    "gbc",
    GradientBoostingClassifier(n_estimators=25, max_depth=3, random_state=0),
    cancer.data,
    cancer.target,
    "binary-classification",
)
float_model(
    "gbr",
    GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0),
    diabetes.data,
    diabetes.target,
    "regression",
)
float_model(
    "mlp",
    make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=3000, random_state=0)
    ),
    iris.data,
    iris.target,
    "multiclass-classification",
)

# Mixed types: numbers scaled, strings one-hot encoded, one graph input per column.
n = 400
frame = pd.DataFrame(
    {
        "amount": RNG.gamma(2.0, 40.0, n).astype(np.float32),
        "count": RNG.integers(0, 20, n).astype(np.int64),
        "channel": RNG.choice(["web", "store", "phone"], n),
        "city": RNG.choice(["paris", "lyon", "nice", "lille"], n),
    }
)
label = (
    (frame["amount"] > 90) & (frame["channel"] != "store") | (frame["city"] == "nice")
).astype(int)
pipe = Pipeline(
    [
        (
            "columns",
            ColumnTransformer(
                [
                    ("num", StandardScaler(), ["amount", "count"]),
                    ("cat", OneHotEncoder(handle_unknown="ignore"), ["channel", "city"]),
                ]
            ),
        ),
        ("model", LogisticRegression(max_iter=2000)),
    ]
)
train, test = frame.iloc[:350], frame.iloc[350:]
pipe.fit(train, label.iloc[:350])
types = [
    ("amount", FloatTensorType([None, 1])),
    ("count", Int64TensorType([None, 1])),
    ("channel", StringTensorType([None, 1])),
    ("city", StringTensorType([None, 1])),
]
model = convert_sklearn(pipe, initial_types=types)
test = test.copy()
test.iloc[0, test.columns.get_loc("city")] = "marseille"  # a category never seen
feeds = {
    "amount": test[["amount"]].to_numpy(np.float32),
    "count": test[["count"]].to_numpy(np.int64),
    "channel": test[["channel"]].to_numpy(object),
    "city": test[["city"]].to_numpy(object),
}
inputs = [
    tensor("amount", feeds["amount"], "FP32"),
    tensor("count", feeds["count"], "INT64"),
    tensor("channel", feeds["channel"], "BYTES"),
    tensor("city", feeds["city"], "BYTES"),
]
save("onehot", model, feeds, inputs, [str(c) for c in pipe.classes_], "binary-classification")

# A PyTorch-style float graph: dynamic batch, MatMul/Add/Relu/Softmax, one output.
w1 = RNG.normal(size=(4, 8)).astype(np.float32)
b1 = RNG.normal(size=(8,)).astype(np.float32)
w2 = RNG.normal(size=(8, 3)).astype(np.float32)
b2 = RNG.normal(size=(3,)).astype(np.float32)
graph = helper.make_graph(
    [
        helper.make_node("MatMul", ["input", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
        helper.make_node("Add", ["h3", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ],
    "torch_style",
    [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
    [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 3])],
    [
        helper.make_tensor("w1", TensorProto.FLOAT, w1.shape, w1.reshape(-1)),
        helper.make_tensor("b1", TensorProto.FLOAT, b1.shape, b1),
        helper.make_tensor("w2", TensorProto.FLOAT, w2.shape, w2.reshape(-1)),
        helper.make_tensor("b2", TensorProto.FLOAT, b2.shape, b2),
    ],
)
torch_model = helper.make_model(
    graph, producer_name="pytorch-style", opset_imports=[helper.make_opsetid("", 17)]
)
onnx.checker.check_model(torch_model)
x = iris.data[:30].astype(np.float32)
path = OUT / "torch_style.onnx"
path.write_bytes(torch_model.SerializeToString())
probs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
(OUT / "torch_style.json").write_text(
    json.dumps(
        {
            "task": "multiclass-classification",
            "classes": ["setosa", "versicolor", "virginica"],
            "inputs": [tensor("input", x, "FP32")],
            "probabilities": np.asarray(probs, dtype=np.float64).tolist(),
        }
    )
)

# A TensorFlow/Keras-style binary head: normalisation inside the graph, Gemm, a sigmoid
# [N, 1] output (the positive class's probability alone).
scaler = StandardScaler().fit(cancer.data)
head = LogisticRegression(max_iter=2000).fit(scaler.transform(cancer.data), cancer.target)
mean = scaler.mean_.astype(np.float32)
scale = scaler.scale_.astype(np.float32)
w = head.coef_.T.astype(np.float32)
b = head.intercept_.astype(np.float32)
graph = helper.make_graph(
    [
        helper.make_node("Sub", ["dense_input", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["normalized"]),
        helper.make_node("Gemm", ["normalized", "kernel", "bias"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["dense_1"]),
    ],
    "keras_style",
    [helper.make_tensor_value_info("dense_input", TensorProto.FLOAT, ["unk__6", 30])],
    [helper.make_tensor_value_info("dense_1", TensorProto.FLOAT, ["unk__7", 1])],
    [
        helper.make_tensor("mean", TensorProto.FLOAT, mean.shape, mean),
        helper.make_tensor("scale", TensorProto.FLOAT, scale.shape, scale),
        helper.make_tensor("kernel", TensorProto.FLOAT, w.shape, w.reshape(-1)),
        helper.make_tensor("bias", TensorProto.FLOAT, b.shape, b),
    ],
)
keras_model = helper.make_model(
    graph, producer_name="tf2onnx-style", opset_imports=[helper.make_opsetid("", 13)]
)
onnx.checker.check_model(keras_model)
x = cancer.data[:40].astype(np.float32)
path = OUT / "keras_style.onnx"
path.write_bytes(keras_model.SerializeToString())
p = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"dense_input": x})[0]
p = np.asarray(p, dtype=np.float64).reshape(-1)
(OUT / "keras_style.json").write_text(
    json.dumps(
        {
            "task": "binary-classification",
            "classes": ["malignant", "benign"],
            "inputs": [tensor("dense_input", x, "FP32")],
            "probabilities": np.stack([1 - p, p], axis=1).tolist(),
        }
    )
)

# Boosters through onnxmltools: LightGBM (multi-class) and XGBoost (binary).
import lightgbm  # noqa: E402
import onnxmltools  # noqa: E402
import xgboost  # noqa: E402
from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat  # noqa: E402


def booster(name, estimator, x, y, task, convert):
    xtr, xte, ytr, _ = train_test_split(x, y, test_size=40, random_state=0)
    estimator.fit(xtr, ytr)
    xte = xte.astype(np.float32)
    model = convert(estimator, initial_types=[("X", MlFloat([None, x.shape[1]]))])
    classes = [str(c) for c in estimator.classes_]
    save(name, model, {"X": xte}, [tensor("X", xte, "FP32")], classes, task)


booster(
    "lightgbm",
    lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1, random_state=0),
    iris.data,
    iris.target,
    "multiclass-classification",
    onnxmltools.convert_lightgbm,
)
booster(
    "xgboost",
    xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0),
    cancer.data,
    cancer.target,
    "binary-classification",
    onnxmltools.convert_xgboost,
)

# Support vector machines: one-vs-one votes (iris, RBF), Platt probabilities (a scaled
# polynomial-kernel binary classifier), and a scaled RBF regressor.
float_model("svc", SVC(random_state=0), iris.data, iris.target, "multiclass-classification")
float_model(
    "svc_proba",
    make_pipeline(StandardScaler(), SVC(kernel="poly", probability=True, random_state=0)),
    cancer.data,
    cancer.target,
    "binary-classification",
)
float_model("svr", make_pipeline(StandardScaler(), SVR()), diabetes.data, diabetes.target, "regression")

# An operator neither tract nor mlpipe runs (ai.onnx.ml LabelEncoder): import refuses it by name.
encoder = helper.make_model(
    helper.make_graph(
        [
            helper.make_node(
                "LabelEncoder",
                ["city"],
                ["code"],
                domain="ai.onnx.ml",
                keys_strings=["paris", "lyon"],
                values_int64s=[0, 1],
            ),
            helper.make_node("Cast", ["code"], ["value"], to=TensorProto.FLOAT),
        ],
        "label_encoder",
        [helper.make_tensor_value_info("city", TensorProto.STRING, [None, 1])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, [None, 1])],
    ),
    opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)],
)
(OUT / "label_encoder.onnx").write_bytes(encoder.SerializeToString())
print(json.dumps(sorted(p.stem for p in OUT.glob("*.json"))))
