"""The same model, inputs and calls through Triton's gRPC client and Triton's HTTP client.

usage: triton_grpc.py HTTP_HOST:PORT GRPC_HOST:PORT ROWS_JSON [API_KEY]
       (ROWS_JSON: [[f, ...], ...], null = missing; API_KEY sent as a bearer token)

Prints one JSON object: per protocol ("http", "grpc") the health answers, the server and
model metadata and the outputs of model `fraud`; for gRPC also the outputs of a request
with typed contents (not raw bytes), the gRPC health check, the services reflection lists
(v1 and v1alpha), the status codes of refused calls (unknown model, wrong key), and how
the `.proto` the server reflects differs from the one Triton's client is built on (field
numbers, types, methods; expected: not at all).
"""

import json
import sys

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from google.protobuf import descriptor_pb2
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

http_url, grpc_url, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
key = sys.argv[4] if len(sys.argv) > 4 else None


def auth():
    # A fresh dict per call: Triton's HTTP client adds its own headers to the one it gets.
    return {"authorization": f"Bearer {key}"} if key else None


x = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float32)


def outputs(result, names):
    out = {}
    for name in names:
        a = result.as_numpy(name)
        if a.dtype == object:
            out[name] = [v.decode() if isinstance(v, bytes) else str(v) for v in a.ravel()]
        else:
            out[name] = [float(v) for v in a.ravel()]
    return out


def run(client, module):
    meta = client.get_model_metadata("fraud", headers=auth())
    server = client.get_server_metadata(headers=auth())
    if module is grpcclient:
        meta = {
            "name": meta.name,
            "versions": list(meta.versions),
            "platform": meta.platform,
            "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in meta.inputs],
            "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in meta.outputs],
        }
        server = {"name": server.name, "version": server.version, "extensions": list(server.extensions)}
    names = [o["name"] for o in meta["outputs"]]
    inp = module.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    # Default settings: binary tensors over HTTP, raw_input_contents over gRPC.
    result = client.infer("fraud", [inp], headers=auth(), request_id="conformance-1")
    return {
        "live": client.is_server_live(headers=auth()),
        "ready": client.is_server_ready(headers=auth()),
        "model_ready": client.is_model_ready("fraud", headers=auth()),
        "server": server,
        "metadata": meta,
        "outputs": outputs(result, names),
        "id": result.get_response().id if module is grpcclient else result.get_response()["id"],
    }


report = {
    "http": run(httpclient.InferenceServerClient(url=http_url), httpclient),
    "grpc": run(grpcclient.InferenceServerClient(url=grpc_url), grpcclient),
}

channel = grpc.insecure_channel(grpc_url)
metadata = [("authorization", f"Bearer {key}")] if key else None

# Typed contents instead of raw bytes, with the stub Triton's client is built on.
stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
request = service_pb2.ModelInferRequest(model_name="fraud")
tensor = request.inputs.add(name="features", datatype="FP32", shape=list(x.shape))
tensor.contents.fp32_contents.extend(x.ravel().tolist())
response = stub.ModelInfer(request, metadata=metadata)
typed = {}
for i, o in enumerate(response.outputs):
    raw = response.raw_output_contents[i]
    if o.datatype == "FP32":
        typed[o.name] = [float(v) for v in np.frombuffer(raw, dtype="<f4")]
report["grpc_typed"] = typed

# Refusals keep their meaning as gRPC status codes.
codes = {}
try:
    grpcclient.InferenceServerClient(url=grpc_url).get_model_metadata("no-such-model", headers=auth())
except InferenceServerException as e:
    codes["unknown_model"] = e.status()
try:
    grpcclient.InferenceServerClient(url=grpc_url).get_model_metadata(
        "fraud", headers={"authorization": "Bearer mlp_wrong_key"}
    )
    codes["wrong_key"] = "accepted"
except InferenceServerException as e:
    codes["wrong_key"] = e.status()
report["codes"] = codes

# The standard health service (what grpc_health_probe and Kubernetes' gRPC probes call):
# HealthCheckRequest{service = ""} -> HealthCheckResponse{status = SERVING (1)}.
check = channel.unary_unary(
    "/grpc.health.v1.Health/Check",
    request_serializer=lambda b: b,
    response_deserializer=lambda b: b,
)
report["health"] = check(b"").hex()

# Server reflection, as grpcurl lists services: ServerReflectionRequest{list_services = ""}.
for version in ["v1", "v1alpha"]:
    info = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    answers = list(info(iter([b"\x3a\x00"])))
    report[f"reflection_{version}"] = answers[0].decode("latin-1") if answers else ""



def length_delimited(buf):
    """(field number, bytes) of each length-delimited field of a protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        wire = key & 7
        if wire == 2:
            n, i = varint(buf, i)
            yield key >> 3, buf[i : i + n]
            i += n
        elif wire == 0:
            _, i = varint(buf, i)
        else:
            raise ValueError(f"wire type {wire}")


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def signature(file, message_names):
    """Each message's fields (nested messages too) and the service's methods."""
    out = {}

    def walk(prefix, messages):
        for m in messages:
            if m.options.map_entry:
                continue
            name = f"{prefix}{m.name}"
            out[name] = sorted((f.name, f.number, f.type, f.label, f.type_name) for f in m.field)
            walk(f"{name}.", m.nested_type)

    walk("", [m for m in file.message_type if m.name in message_names])
    for service in file.service:
        for method in service.method:
            out[f"{service.name}.{method.name}"] = (method.input_type, method.output_type)
    return out


# ServerReflectionRequest{file_containing_symbol = SERVICE} -> file_descriptor_response.
info = channel.stream_stream(
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    request_serializer=lambda b: b,
    response_deserializer=lambda b: b,
)
symbol = b"inference.GRPCInferenceService"
answer = list(info(iter([b"\x22" + bytes([len(symbol)]) + symbol])))[0]
files = [
    descriptor_pb2.FileDescriptorProto.FromString(f)
    for field, body in length_delimited(answer)
    if field == 4
    for n, f in length_delimited(body)
    if n == 1
]
ours = next(f for f in files if f.package == "inference")
theirs = descriptor_pb2.FileDescriptorProto()
service_pb2.DESCRIPTOR.CopyToProto(theirs)
names = {m.name for m in ours.message_type}
mine, triton = signature(ours, names), signature(theirs, names)
report["descriptor_mismatches"] = [
    f"{k}: ours {mine.get(k)} vs Triton's {triton.get(k)}"
    for k in sorted(mine)
    if mine[k] != triton.get(k)
]
report["descriptor_compared"] = len(mine)

print(json.dumps(report))
