#!/usr/bin/env python3
"""A small churn-prediction model server (python3 standard library only).

    PORT=8080 python3 serve.py          # in a release directory with model.json

Endpoints, on 127.0.0.1:$PORT:

    GET  /healthz   200 "ok" once the model is loaded
    POST /predict   JSON body {"tenure_months": 3, "monthly_charges": 79.5,
                    "support_calls": 4, "plan": "basic"} -> {"churn_probability": ...}
    GET  /predict   the same features in the query string
    GET  /metrics   Prometheus text: churn_requests_total,
                    churn_request_errors_total, churn_request_duration_seconds

The model is a logistic regression whose weights live in model.json next to
this file (or in $MODEL_FILE): standardized numeric features plus one
coefficient per subscription plan. Every /predict request counts in
churn_requests_total; one answered with a 5xx also counts in
churn_request_errors_total (a 4xx is the client's mistake, not the
model's). Gossamer's canary analysis divides the two.
"""

import json
import math
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_FILE = os.environ.get("MODEL_FILE", os.path.join(HERE, "model.json"))
MAX_BODY = 64 * 1024

# Latency histogram bounds, seconds (Prometheus' "le").
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class BadRequest(Exception):
    """The request is wrong: answered 400, not counted as an error."""


class ModelError(Exception):
    """The model cannot answer: answered 500, counted as an error."""


class Model:
    """A logistic regression over standardized numeric features and a plan."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            # json accepts NaN and Infinity: whatever the training job wrote
            # is what gets served.
            doc = json.load(f)
        self.name = str(doc.get("model", "churn"))
        self.version = str(doc.get("version", "unknown"))
        self.bias = float(doc["bias"])
        self.numeric = {}
        for name, p in doc["numeric"].items():
            self.numeric[name] = (float(p["mean"]), float(p["std"]), float(p["weight"]))
        self.plans = {name: float(w) for name, w in doc["plan"].items()}

    def predict(self, features):
        z = self.bias
        for name, (mean, std, weight) in self.numeric.items():
            if name not in features:
                raise BadRequest("missing feature %r" % name)
            try:
                x = float(features[name])
            except (TypeError, ValueError):
                raise BadRequest("feature %r is not a number: %r" % (name, features[name]))
            if not math.isfinite(x):
                raise BadRequest("feature %r is not finite" % name)
            z += weight * (x - mean) / std
        plan = features.get("plan")
        if plan not in self.plans:
            raise BadRequest("unknown plan %r (known: %s)" % (plan, ", ".join(sorted(self.plans))))
        z += self.plans[plan]
        p = 0.0 if z < -700 else 1.0 / (1.0 + math.exp(-z))  # exp() overflows below -709
        # Never hand a caller a probability that is not one.
        if not 0.0 <= p <= 1.0:
            raise ModelError("model %s produced %r for plan %r" % (self.version, p, plan))
        return p


class Metrics:
    """Counters and a latency histogram of /predict, safe across threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self.buckets = [0] * len(BUCKETS)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds, error):
        with self.lock:
            self.requests += 1
            self.errors += 1 if error else 0
            self.count += 1
            self.sum += seconds
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    self.buckets[i] += 1

    def text(self, model):
        with self.lock:
            lines = [
                "# HELP churn_requests_total Prediction requests answered.",
                "# TYPE churn_requests_total counter",
                "churn_requests_total %d" % self.requests,
                "# HELP churn_request_errors_total Prediction requests answered with a 5xx.",
                "# TYPE churn_request_errors_total counter",
                "churn_request_errors_total %d" % self.errors,
                "# HELP churn_request_duration_seconds Time to answer a prediction request.",
                "# TYPE churn_request_duration_seconds histogram",
            ]
            for le, n in zip(BUCKETS, self.buckets):
                lines.append('churn_request_duration_seconds_bucket{le="%g"} %d' % (le, n))
            lines.append('churn_request_duration_seconds_bucket{le="+Inf"} %d' % self.count)
            lines.append("churn_request_duration_seconds_sum %.6f" % self.sum)
            lines.append("churn_request_duration_seconds_count %d" % self.count)
        lines += [
            "# HELP churn_model_info The model this process serves.",
            "# TYPE churn_model_info gauge",
            'churn_model_info{model="%s",version="%s"} 1' % (model.name, model.version),
        ]
        return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    server_version = "churn-model/1"

    def _send(self, code, body, ctype="application/json"):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, code, obj):
        self._send(code, json.dumps(obj) + "\n")

    def _predict(self, features):
        start = time.monotonic()
        code = 200
        try:
            p = self.server.model.predict(features)
            self._json(200, {"churn_probability": round(p, 6), "model_version": self.server.model.version})
        except BadRequest as e:
            code = 400
            self._json(400, {"error": str(e)})
        except Exception as e:  # noqa: BLE001 - any other failure is the model's
            code = 500
            sys.stderr.write("predict failed: %s: %s; features %s\n" % (type(e).__name__, e, json.dumps(features)))
            self._json(500, {"error": "internal error: %s" % e})
        self.server.metrics.observe(time.monotonic() - start, code >= 500)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, "ok\n", "text/plain")
        elif url.path == "/metrics":
            self._send(200, self.server.metrics.text(self.server.model), "text/plain; version=0.0.4")
        elif url.path == "/predict":
            q = parse_qs(url.query)
            self._predict({k: v[-1] for k, v in q.items()})
        elif url.path == "/":
            self._send(200, "churn model %s: POST /predict, GET /healthz, GET /metrics\n" % self.server.model.version,
                       "text/plain")
        else:
            self._json(404, {"error": "no such path: %s" % url.path})

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path != "/predict":
            self._json(404, {"error": "POST goes to /predict"})
            return
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self._json(413 if n > MAX_BODY else 400, {"error": "bad Content-Length"})
            return
        try:
            features = json.loads(self.rfile.read(n) or b"{}")
            if not isinstance(features, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as e:
            start = time.monotonic()
            self._json(400, {"error": "bad JSON body: %s" % e})
            self.server.metrics.observe(time.monotonic() - start, False)
            return
        self._predict(features)

    def log_message(self, fmt, *args):
        pass  # one line per request would drown the log; errors are logged above


def main():
    try:
        port = int(os.environ["PORT"])
    except (KeyError, ValueError):
        sys.exit("serve.py: set PORT to the port to listen on (the worker does)")
    model = Model(MODEL_FILE)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.model = model
    server.metrics = Metrics()

    def stop(signum, frame):
        # shutdown() waits for serve_forever(), which runs in this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("churn model %s (%s) listening on 127.0.0.1:%d" % (model.version, MODEL_FILE, port), flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    print("churn model %s stopped" % model.version, flush=True)


if __name__ == "__main__":
    main()
