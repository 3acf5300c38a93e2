"""A plain HTTP object server over a folder, for the Spin component's tests: GET returns a
file (404 when absent), PUT writes one (creating folders). It stands in for an object
store's public HTTP interface (e.g. an R2 bucket's public URL), which the component reads
with unsigned requests.

Usage: object_http.py PORT ROOT   (prints "listening" once ready)
"""

import http.server
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def _path(self):
        rel = self.path.split("?", 1)[0].lstrip("/")
        full = os.path.realpath(os.path.join(ROOT, rel))
        if not full.startswith(ROOT + os.sep):
            return None
        return full

    def do_GET(self):
        path = self._path()
        if path is None or not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(path, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        path = self._path()
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path is None:
            self.send_response(400)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port, ROOT = int(sys.argv[1]), os.path.realpath(sys.argv[2])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("listening", flush=True)
    server.serve_forever()
