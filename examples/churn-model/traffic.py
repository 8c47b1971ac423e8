#!/usr/bin/env python3
"""Steady prediction traffic for every running instance of a service.

    examples/churn-model/traffic.py --dsctl-config /tmp/gossamer-demo/dsctl.conf --rate 20

Gossamer's canary analysis judges a canary by the requests it answered, so
the demo needs callers. Once a second this asks the cluster where the
service runs (`dsctl -o json status SERVICE`: each instance's worker,
version, state and port) and sends RATE requests a second to /predict of
every running instance on 127.0.0.1, until stopped (SIGINT or SIGTERM).
dsctl needs to reach the cluster and, unless it runs with --insecure, a
key: --dsctl-config names its config file (coordinators, key,
cluster-key), else dsctl reads $DSCTL_CONFIG, $DSCTL_KEY and the like.

The requests replay a fixed sample of customers, in order, so every ten
consecutive requests hold the same mix of plans (one of them an enterprise
customer): what an instance's error ratio shows is the model, not luck.
Every --stats seconds it prints, per version, the answers since the last
line.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

# One cycle of plans, one enterprise customer in ten.
PLANS = ("basic", "standard", "basic", "premium", "standard",
         "basic", "enterprise", "standard", "basic", "premium")


def customers(n_cycles=20, seed=7):
    """A fixed sample of customers, PLANS repeated n_cycles times."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_cycles):
        for plan in PLANS:
            out.append({
                "tenure_months": rng.randint(1, 72),
                "monthly_charges": round(rng.uniform(20, 120), 2),
                "support_calls": rng.choice((0, 0, 0, 1, 1, 2, 3, 5)),
                "plan": plan,
            })
    return out


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows = {}  # version -> [ok, errors (5xx), other answers, unreachable]

    def add(self, version, kind):
        with self.lock:
            self.rows.setdefault(version, [0, 0, 0, 0])[kind] += 1

    def take(self):
        with self.lock:
            rows, self.rows = self.rows, {}
        return rows


class Sender(threading.Thread):
    """Sends `rate` requests a second to one instance until told to stop."""

    def __init__(self, worker, port, version, rate, sample, stats):
        super().__init__(daemon=True)
        self.worker, self.port, self.version = worker, port, version
        self.rate, self.sample, self.stats = rate, sample, stats
        self.stop = threading.Event()

    def one(self, customer):
        body = json.dumps(customer)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            code = conn.getresponse().status
        except OSError:
            return 3
        finally:
            conn.close()
        return 0 if code == 200 else 1 if code >= 500 else 2

    def run(self):
        i = random.Random(self.port).randrange(len(self.sample))
        period = 1.0 / self.rate
        due = time.monotonic()
        while not self.stop.is_set():
            self.stats.add(self.version, self.one(self.sample[i % len(self.sample)]))
            i += 1
            due = max(due + period, time.monotonic() - 1.0)  # never burst more than 1 s
            self.stop.wait(max(0.0, due - time.monotonic()))


def instances(dsctl, env, coordinators, service, done):
    """The running instances of `service` as ({(worker, port): version}, None),
    or (None, why) when the cluster did not answer or `done` was set. dsctl
    runs with the environment `env`."""
    cmd = [dsctl, "-o", "json", "--timeout", "3s"]
    if coordinators:
        cmd += ["--coordinators", coordinators]
    cmd += ["status", service]
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    except OSError as e:
        return None, "%s: %s" % (dsctl, e)
    deadline = time.monotonic() + 10
    while True:
        try:
            out, err = p.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if done.is_set() or time.monotonic() > deadline:
                p.kill()
                p.communicate()
                return None, "stopped waiting for dsctl status"
    if p.returncode != 0:
        return None, (err.strip() or "exit %d" % p.returncode).splitlines()[-1]
    try:
        doc = json.loads(out)
    except ValueError as e:
        return None, "dsctl printed something that is not JSON: %s" % e
    out = {}
    for row in doc.get("instances") or []:
        if "port" not in row:
            return None, ("dsctl's status has no \"port\" for instances: this dsctl is older "
                          "than the demo (rebuild it)")
        if row.get("state") == "running" and int(row.get("port") or 0) > 0:
            out[(row["worker"], int(row["port"]))] = int(row["version"])
    return out, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--service", default="churn", help="service to call (default churn)")
    ap.add_argument("--rate", type=float, default=20.0, help="requests a second per instance (default 20)")
    ap.add_argument("--dsctl", default=os.environ.get("DSCTL") or shutil.which("dsctl") or "dsctl",
                    help="the dsctl program (default $DSCTL, else dsctl on PATH)")
    ap.add_argument("--dsctl-config", default="", metavar="FILE",
                    help="dsctl's config file: coordinators, key, cluster-key (default: "
                         "$DSCTL_CONFIG, else dsctl's own default)")
    ap.add_argument("--coordinators", default="",
                    help="coordinator rpc endpoints (default: what dsctl finds, e.g. $DSCTL_COORDINATORS)")
    ap.add_argument("--refresh", type=float, default=1.0, help="seconds between status queries (default 1)")
    ap.add_argument("--stats", type=float, default=10.0, help="seconds between stats lines (default 10)")
    ap.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: run until stopped)")
    a = ap.parse_args()
    if not 0 < a.rate <= 1000:
        ap.error("--rate must be more than 0 and at most 1000")
    if a.refresh <= 0 or a.stats <= 0 or a.duration < 0:
        ap.error("--refresh and --stats must be more than 0, --duration at least 0")
    env = dict(os.environ)
    if a.dsctl_config:
        if not os.path.isfile(a.dsctl_config):
            ap.error("--dsctl-config %s: no such file" % a.dsctl_config)
        env["DSCTL_CONFIG"] = os.path.abspath(a.dsctl_config)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    sample, stats, senders = customers(), Stats(), {}
    start = time.monotonic()
    next_stats = start + a.stats
    last_err = None
    print("traffic: %g requests/s to each running instance of %s" % (a.rate, a.service), flush=True)
    while not done.is_set() and not (a.duration and time.monotonic() - start >= a.duration):
        found, err = instances(a.dsctl, env, a.coordinators, a.service, done)
        if err and err != last_err and not done.is_set():
            print("traffic: cannot list the instances: %s (still trying)" % err, flush=True)
        last_err = err
        if found is not None:
            for key in [k for k, s in senders.items() if found.get(k) != s.version]:
                senders.pop(key).stop.set()
            for (worker, port), version in found.items():
                if (worker, port) not in senders:
                    s = Sender(worker, port, version, a.rate, sample, stats)
                    senders[(worker, port)] = s
                    s.start()
                    print("traffic: calling %s v%d on port %d" % (worker, version, port), flush=True)
        if time.monotonic() >= next_stats:
            next_stats += a.stats
            parts = ["v%d %d ok, %d errors, %d other, %d unreachable" % ((v,) + tuple(c))
                     for v, c in sorted(stats.take().items())]
            print("traffic: last %gs: %s" % (a.stats, "; ".join(parts) or "no instance running"), flush=True)
        done.wait(a.refresh)
    for s in senders.values():
        s.stop.set()
    for s in senders.values():
        s.join(timeout=3)
    print("traffic: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
