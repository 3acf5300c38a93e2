"""A minimal OTLP/HTTP metrics receiver for the edge tests.

Each `POST /v1/metrics` (`application/x-protobuf`) is decoded with opentelemetry-proto's
message definitions (the reference ones, not ours) and every data point is appended as one
JSON line to the file named by the first argument. Prints the port it listens on, then
serves until killed. Debian's Prometheus has no OTLP receiver; this stands in for one.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

OUT = sys.argv[1]


def attributes(kvs):
    return {kv.key: kv.value.string_value for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    def body(self):
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length", "0")))

    def do_POST(self):
        # Read whole before answering: a client still writing would see its pipe broken.
        body = self.body()
        if self.path != "/v1/metrics":
            self.send_response(404)
            self.end_headers()
            return
        if self.headers.get("content-type") != "application/x-protobuf":
            self.send_response(415)
            self.end_headers()
            return
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        lines = []
        for rm in request.resource_metrics:
            resource = attributes(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind)
                    for p in data.data_points:
                        point = {
                            "authorization": self.headers.get("authorization"),
                            "resource": resource,
                            "scope": sm.scope.name,
                            "name": m.name,
                            "kind": kind,
                            "attributes": attributes(p.attributes),
                            "start": p.start_time_unix_nano,
                            "time": p.time_unix_nano,
                            "temporality": data.aggregation_temporality,
                        }
                        if kind == "sum":
                            point["monotonic"] = data.is_monotonic
                            which = p.WhichOneof("value")
                            point["value"] = getattr(p, which) if which else None
                        elif kind == "histogram":
                            point["count"] = p.count
                            point["sum"] = p.sum
                            point["buckets"] = list(p.bucket_counts)
                            point["bounds"] = list(p.explicit_bounds)
                        lines.append(json.dumps(point))
        with open(OUT, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        answer = ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
