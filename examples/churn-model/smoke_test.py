#!/usr/bin/env python3
"""The release test of the churn model: a few known customers through /predict.

Gossamer runs it against the started canary (tests: in the spec) with PORT
set to the instance's port; exit 0 passes the release, anything else fails
it with the last lines of this script's output as the reason.
"""

import json
import os
import sys
import urllib.error
import urllib.request

BASE = "http://127.0.0.1:%s" % os.environ.get("PORT", "8080")

# Customers whose answers we know the shape of.
AT_RISK = {"tenure_months": 2, "monthly_charges": 95.0, "support_calls": 5, "plan": "basic"}
LOYAL = {"tenure_months": 60, "monthly_charges": 45.0, "support_calls": 0, "plan": "premium"}
TYPICAL = {"tenure_months": 24, "monthly_charges": 60.0, "support_calls": 1, "plan": "standard"}


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def probability(customer):
    code, text = call("POST", "/predict", customer)
    if code != 200:
        sys.exit("POST /predict %s: HTTP %d: %s" % (json.dumps(customer), code, text.strip()))
    p = json.loads(text)["churn_probability"]
    if not 0.0 <= p <= 1.0:
        sys.exit("POST /predict %s: churn_probability %r is not a probability" % (json.dumps(customer), p))
    return p


def main():
    at_risk, loyal, typical = probability(AT_RISK), probability(LOYAL), probability(TYPICAL)
    print("at risk %.3f, typical %.3f, loyal %.3f" % (at_risk, typical, loyal))
    if not at_risk > typical > loyal:
        sys.exit("the model ranks customers wrongly: at risk %.3f, typical %.3f, loyal %.3f"
                 % (at_risk, typical, loyal))
    if at_risk < 0.5 or loyal > 0.2:
        sys.exit("the model is not confident where it should be: at risk %.3f (want > 0.5), loyal %.3f (want < 0.2)"
                 % (at_risk, loyal))

    q = "&".join("%s=%s" % kv for kv in TYPICAL.items())
    code, text = call("GET", "/predict?" + q)
    if code != 200 or abs(json.loads(text)["churn_probability"] - typical) > 1e-6:
        sys.exit("GET /predict?%s: HTTP %d: %s (POST gave %.6f)" % (q, code, text.strip(), typical))

    code, text = call("POST", "/predict", {"tenure_months": 3})
    if code != 400:
        sys.exit("POST /predict with a missing feature: HTTP %d, expected 400: %s" % (code, text.strip()))

    code, text = call("GET", "/metrics")
    if code != 200 or "churn_requests_total" not in text or "churn_request_errors_total" not in text:
        sys.exit("GET /metrics: HTTP %d, no churn_requests_total/churn_request_errors_total" % code)
    print("smoke test passed")


if __name__ == "__main__":
    main()
