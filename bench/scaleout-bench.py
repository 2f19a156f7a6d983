#!/usr/bin/python3
"""Scale-out benchmark (issue 12, item 6): weft-server nodes sharing one
PostgreSQL and one Redis, against one node on the embedded SQLite store.

  bench/scaleout-bench.py            # full run, about 10 minutes
  bench/scaleout-bench.py --quick    # scaled down, about 1 minute
  bench/scaleout-bench.py --help

It starts its own PostgreSQL 15 (initdb in a temporary directory, run as the
`postgres` user when started as root) and, per run, its own redis-server and
weft-server nodes, all on free 127.0.0.1 ports; every wait is bounded and
everything it started is stopped at the end (also on Ctrl-C). Runs:

  c4x   scenario c of load_tests/run-scenarios.sh at 4x (--docs 200
        --bots-per-doc 4 --rate 5, 15 s): one node on SQLite (the baseline),
        then 1, 2 and 3 nodes on PostgreSQL + Redis, the bots spread over the
        nodes by weft-bots (bot k of document d on node (d + k) mod N)
  c1x   scenario c as it is (50 documents, 10 s): one node on SQLite and 3
        nodes, to tell the design's latency from a saturated machine's
        (full mode only)
  hot   one document x 20 bots (10 s): one node on SQLite, one node and 3
        nodes on PostgreSQL + Redis

--quick: c4x with 50 documents, hot, 5 s each, short waits.

Before each run it waits (at most --max-wait seconds) for the 1-minute load
average to fall below --load-threshold and for the machine to be less than
--busy-threshold % busy over 2 s, and records both with the busiest
processes; a run that started on a busy machine is marked so, and the CPU
that other processes used during each run is reported ("others").

CPU of every weft-server node, of redis-server, of PostgreSQL (the
postmaster, its reaped children and its live children) and of weft-bots is
read from /proc/PID/stat at weft-bots' progress ticks (once a second during
typing), so the window is the typing phase from its first to its last tick,
and divided by the keystrokes typed between those ticks. Latency
and convergence are weft-bots' own (its --json report is embedded).

Writes bench/results/scaleout-DATE.json (--quick: scaleout-DATE-quick.json, or
--out FILE) and prints a markdown table. Exit status: 0 if every run
finished and converged, 1 otherwise, 2 on a bad flag. WEFT_BUILD_DIR (default
build) names the build directory; nothing is built.
"""

import argparse
import atexit
import datetime
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc ---

def proc_stat(pid):
    """(ppid, utime+stime, cutime+cstime) in seconds, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK,
            (int(fields[13]) + int(fields[14])) / CLK_TCK)


def cpu_of(pid):
    st = proc_stat(pid)
    return st[1] if st else None


def postgres_cpu(postmaster):
    """All of PostgreSQL: the postmaster's own time, its reaped children's
    (cutime+cstime) and every live child's utime+stime."""
    st = proc_stat(postmaster)
    if not st:
        return None
    total = st[1] + st[2]
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != postmaster:
            c = proc_stat(int(d))
            if c and c[0] == postmaster:
                total += c[1]
    return total


def machine_busy_seconds():
    """CPU time spent by everything on the machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def busy_sample(seconds=2.0, n=5):
    """Over a short window: the share of all cores busy (/proc/stat) and the
    processes that used the most CPU in it (/proc/PID/stat), so a compiler
    running alongside shows by name."""
    def total():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:8]]
        return sum(v), v[3] + v[4]

    def per_process():
        out = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                st = proc_stat(int(d))
                if st:
                    out[int(d)] = st[1]
        return out
    t0, i0 = total()
    p0 = per_process()
    time.sleep(seconds)
    t1, i1 = total()
    p1 = per_process()
    rows = []
    for pid, c in p1.items():
        used = c - p0.get(pid, 0.0)
        if used > 0:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                comm = "?"
            rows.append({"pid": pid, "comm": comm, "percent_of_core": round(100 * used / seconds, 1)})
    rows.sort(key=lambda r: -r["percent_of_core"])
    return round(100.0 * (1 - (i1 - i0) / max(1, t1 - t0)), 1), rows[:n]


def uptime_text():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:
        return ""


# -------------------------------------------------------------- helpers ---

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=2.0):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def wait_http(port, limit_s, proc=None):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            http_get(port, "/healthz", timeout=1.0)
            return True
        except urllib.error.HTTPError:
            return True  # it answers (a degraded /healthz is still up)
        except Exception:
            time.sleep(0.1)
    return False


def stop_process(p, sig=signal.SIGTERM, limit_s=10):
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(sig)
        p.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def metrics(port):
    """Selected counters and gauges of a node's /metrics (summed over labels)."""
    try:
        _, text = http_get(port, "/metrics", timeout=3.0)
    except Exception as e:
        return {"error": str(e)}
    out = {}
    keep = ("weft_bus_", "weft_commit_seconds_sum", "weft_commit_seconds_count", "weft_commit_writes_total",
            "weft_ops_applied_total", "weft_messages_received_total", "weft_messages_sent_total",
            "weft_storage_errors_total", "weft_errors_sent_total", "weft_internal_errors_total",
            "weft_slow_consumers_dropped_total", "weft_connections", "weft_documents_loaded")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{")[0]
        if not name.startswith(keep) or name.endswith("_bucket"):
            continue
        try:
            v = float(value)
        except ValueError:
            continue
        key = name_labels if name == "weft_bus_resyncs_total" else name
        out[key] = out.get(key, 0) + v
    if out.get("weft_commit_seconds_count"):
        out["commit_avg_ms"] = round(1000 * out["weft_commit_seconds_sum"] / out["weft_commit_seconds_count"], 3)
    return out


# ------------------------------------------------------------- services ---

class Postgres:
    """A PostgreSQL of our own: initdb + pg_ctl start as the postgres user
    (PostgreSQL refuses to run as root), pg_ctl stop -m fast at the end."""

    def __init__(self, base):
        cands = sorted(d for d in os.listdir("/usr/lib/postgresql")
                       if os.path.exists(f"/usr/lib/postgresql/{d}/bin/postgres")) if os.path.isdir("/usr/lib/postgresql") else []
        if not cands:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql-15)")
        self.bin = f"/usr/lib/postgresql/{cands[-1]}/bin"
        self.dir = os.path.join(base, "pg")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.started = False
        os.makedirs(self.dir)
        self.prefix = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.initdb_cmd = self.prefix + [f"{self.bin}/initdb", "-D", self.data, "-A", "trust", "-U", "weft",
                                         "--no-sync", "-E", "UTF8"]
        r = subprocess.run(self.initdb_cmd, cwd=self.dir, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("initdb failed: " + r.stderr[-2000:])
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self.start_cmd = self.prefix + [f"{self.bin}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "postgres.log"),
                                        "-w", "-t", "60", "-o", opts, "start"]
        r = subprocess.run(self.start_cmd, cwd=self.dir, capture_output=True, text=True, timeout=90)
        self.started = True  # (stop() tries even if the start half-failed)
        if r.returncode != 0:
            raise RuntimeError("pg_ctl start failed: " + r.stdout[-1000:] + r.stderr[-1000:] + self.log_tail())
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())
        self.version = self.sql("SHOW server_version")
        self.settings = {k: self.sql(f"SHOW {k}") for k in
                         ("fsync", "synchronous_commit", "wal_sync_method", "shared_buffers", "max_connections",
                          "checkpoint_timeout", "max_wal_size")}

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "postgres.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def sql(self, statement, db="postgres"):
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port), "-U", "weft",
                            "-d", db, "-c", statement], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql {statement!r}: {r.stderr.strip()}")
        return r.stdout.strip()

    def uri(self, db):
        return f"postgres://weft@127.0.0.1:{self.port}/{db}"

    def stop(self):
        if not self.started:
            return
        self.started = False
        cmd = self.prefix + [f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop"]
        try:
            r = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                return
        except subprocess.TimeoutExpired:
            pass
        cmd[cmd.index("fast")] = "immediate"
        try:
            subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            log("warning: PostgreSQL did not stop")


class Redis:
    def __init__(self, base, name):
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                    "--dir", self.dir]
        self.logf = open(os.path.join(self.dir, "redis.log"), "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "PING"], capture_output=True,
                               text=True, timeout=5)
            if r.stdout.strip() == "PONG":
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def info(self):
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "INFO"], capture_output=True,
                           text=True, timeout=10)
        out = {}
        for line in r.stdout.splitlines():
            k, _, v = line.strip().partition(":")
            if k in ("used_memory", "used_cpu_sys", "used_cpu_user", "total_commands_processed", "redis_version"):
                out[k] = v
        return out

    def stop(self):
        stop_process(self.proc, signal.SIGTERM, 10)
        self.logf.close()


# -------------------------------------------------------------------- run ---

PROGRESS = re.compile(r"^\s*([0-9.]+)s\s+keys\s+([0-9]+)\s+delivered\s+([0-9]+)\s+p50\s+([0-9.]+) ms\s+p99\s+([0-9.]+) ms")
END_ONE = re.compile(rb"disconnects \d+ *$")
END_SEVERAL = re.compile(rb"failovers \d+ *$")


class Bench:
    def __init__(self, a):
        self.a = a
        self.build = os.path.join(ROOT, os.environ.get("WEFT_BUILD_DIR", "build"))
        self.server_bin = os.path.join(self.build, "weft-server")
        self.bots_bin = os.path.join(self.build, "load_tests", "weft-bots")
        for b in (self.server_bin, self.bots_bin):
            if not os.access(b, os.X_OK):
                raise SystemExit(f"scaleout-bench: {b} is missing; build it first "
                                 f"(cmake --build build -j1 --target weft-server weft-bots)")
        for tool in ("redis-server", "redis-cli", "psql", "runuser"):
            if not shutil.which(tool):
                raise SystemExit(f"scaleout-bench: {tool} is missing (apt-get install postgresql-15 redis-server)")
        self.tmp = tempfile.mkdtemp(prefix="weft-scaleout-")
        os.chmod(self.tmp, 0o755)  # the postgres user must reach tmp/pg
        self.pg = None
        self.live = []  # processes to stop on exit: (Popen, signal)
        self.redis = []
        self.db_counter = 0
        self.cleaned = False

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for p, _ in self.live:
            stop_process(p, signal.SIGTERM, 10)
        self.live.clear()
        for r in self.redis:
            r.stop()
        self.redis.clear()
        if self.pg:
            self.pg.stop()
            self.pg = None
        if not self.a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log(f"kept {self.tmp}")

    def wait_quiet(self):
        """Waits (bounded) for the 1-minute load average to fall below the
        threshold; returns what the machine looked like."""
        start = time.monotonic()
        while True:
            la = loadavg()
            busy, top = busy_sample(2.0)
            # (--quick waits only briefly, so the load average there is
            # mostly the previous run's: only the busy share counts.)
            quiet = (la[0] < self.a.load_threshold or self.a.quick) and busy < self.a.busy_threshold
            if quiet or time.monotonic() - start >= self.a.max_wait:
                break
            time.sleep(3)
        waited = round(time.monotonic() - start, 1)
        return {"uptime": uptime_text(), "loadavg_1_5_15": la, "waited_s": waited,
                "quiet": quiet,
                "busy_percent_of_all_cores_2s": busy,
                "top_processes_2s": top}

    def run(self, name, kind, store, nodes, docs, bots_per_doc, duration, ramp):
        log(f"==> {name}: {docs} docs x {bots_per_doc} bots x {self.a.rate} keys/s, {nodes} node(s), {store}")
        machine = self.wait_quiet()
        log(f"    load before: {machine['loadavg_1_5_15']} (waited {machine['waited_s']} s, "
            f"busy {machine['busy_percent_of_all_cores_2s']}% over 2 s; "
            + ", ".join(f"{x['comm']} {x['percent_of_core']}%" for x in machine["top_processes_2s"][:3]) + ")")
        res = {"name": name, "kind": kind, "store": store, "nodes": nodes, "docs": docs, "bots_per_doc": bots_per_doc,
               "rate_per_bot": self.a.rate, "duration_s": duration, "machine_before": machine,
               "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        procs = []
        redis = None
        run_dir = os.path.join(self.tmp, name)
        os.makedirs(run_dir)
        try:
            common = ["--log-level", "warn", "--max-connections-per-address", "0"]
            if self.a.server_threads:
                common += ["--threads", str(self.a.server_threads)]
            cmds = []
            ports = []
            if store == "sqlite":
                p = free_port()
                ports.append(p)
                cmds.append([self.server_bin, "--port", str(p), "--data-dir", os.path.join(run_dir, "data")] + common)
            else:
                self.db_counter += 1
                db = f"weft_run{self.db_counter}"
                self.pg.sql(f"CREATE DATABASE {db}")
                self.pg.sql("CHECKPOINT")  # no checkpoint of an earlier run's writes inside this one
                redis = Redis(run_dir, "redis")
                self.redis.append(redis)
                res["redis_command"] = redis.cmd
                for i in range(nodes):
                    p = free_port()
                    ports.append(p)
                    cmds.append([self.server_bin, "--node-id", f"n{i + 1}", "--port", str(p), "--store", self.pg.uri(db),
                                 "--bus", f"redis://127.0.0.1:{redis.port}"] + common + self.a.node_arg)
            for i, c in enumerate(cmds):
                lf = open(os.path.join(run_dir, f"node{i + 1}.log"), "w")
                pr = subprocess.Popen(c, stdout=lf, stderr=subprocess.STDOUT, cwd=run_dir)
                lf.close()
                procs.append(pr)
                self.live.append((pr, signal.SIGTERM))
            for pr, p in zip(procs, ports):
                if not wait_http(p, 30, pr):
                    raise RuntimeError(f"weft-server on port {p} did not come up (exit {pr.poll()})")
            res["server_commands"] = cmds

            report = os.path.join(run_dir, "bots.json")
            bots_cmd = [self.bots_bin]
            for p in ports:
                bots_cmd += ["--url", f"ws://127.0.0.1:{p}/"]
            bots_cmd += ["--docs", str(docs), "--bots-per-doc", str(bots_per_doc), "--rate", str(self.a.rate),
                         "--duration", str(duration), "--ramp", str(ramp), "--quiet", str(self.a.quiet),
                         "--seed", str(self.a.seed), "--server-pid", str(procs[0].pid), "--json", report]
            res["bots_command"] = bots_cmd
            limit = ramp + 30 + duration + self.a.quiet + 60
            res.update(self.drive(bots_cmd, limit, procs, redis))
            try:
                with open(report) as f:
                    res["bots_report"] = json.load(f)
            except (OSError, ValueError) as e:
                res["bots_report"] = None
                res.setdefault("problems", []).append(f"no weft-bots report: {e}")
            res["node_metrics"] = [metrics(p) for p in ports]
            if redis:
                res["redis_info"] = redis.info()
        except Exception as e:
            res.setdefault("problems", []).append(f"run failed: {e}")
            log(f"    run failed: {e}")
        finally:
            for pr in procs:
                stop_process(pr, signal.SIGTERM, 15)
                res.setdefault("server_exit_status", []).append(pr.returncode)
            self.live = [(p, s) for p, s in self.live if p not in procs]
            if redis:
                redis.stop()
                self.redis.remove(redis)
            logs = {}
            for i in range(len(procs)):
                try:
                    with open(os.path.join(run_dir, f"node{i + 1}.log")) as f:
                        t = f.read()
                    if t.strip():
                        logs[f"n{i + 1}"] = t if len(t) <= 3000 else t[:1000] + "\n[...]\n" + t[-2000:]
                except OSError:
                    pass
            if logs:
                res["server_log_tails"] = logs
            if store == "sqlite":
                shutil.rmtree(os.path.join(run_dir, "data"), ignore_errors=True)
        self.derive(res, procs)
        return res

    def drive(self, cmd, limit, procs, redis):
        """Runs weft-bots; at each of its progress ticks reads the CPU of every
        process involved. Returns the ticks, the exit status, other stderr."""
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        self.live.append((p, signal.SIGTERM))
        ticks = []
        other = []
        buf = b""
        deadline = time.monotonic() + limit
        timed_out = False
        os.set_blocking(p.stderr.fileno(), False)
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(p.stderr, selectors.EVENT_READ)

        def snapshot(m):
            ticks.append({"t": float(m.group(1)), "keys": int(m.group(2)), "delivered": int(m.group(3)),
                          "p50_so_far_ms": float(m.group(4)), "p99_so_far_ms": float(m.group(5)), "mono": time.monotonic(),
                          "nodes": [cpu_of(pr.pid) for pr in procs],
                          "redis": cpu_of(redis.proc.pid) if redis else None,
                          "postgres": postgres_cpu(self.pg.pid) if (redis and self.pg) else None,
                          "bots": cpu_of(p.pid), "machine": machine_busy_seconds()})

        while True:
            if time.monotonic() > deadline:
                timed_out = True
                stop_process(p, signal.SIGTERM, 10)
                break
            events = sel.select(timeout=0.5)
            if events:
                try:
                    chunk = os.read(p.stderr.fileno(), 65536)
                except BlockingIOError:
                    chunk = b""
                if not chunk:
                    if p.poll() is not None:
                        break
                    continue
                buf += chunk
                # Progress records start with \r, anything else ends with \n.
                parts = re.split(rb"[\r\n]", buf)
                buf = parts.pop()  # maybe incomplete
                for rec in parts:
                    s = rec.decode("utf-8", "replace").strip()
                    if not s:
                        continue
                    m = PROGRESS.match(s)
                    if m:
                        snapshot(m)
                    else:
                        other.append(s)
                        log("    bots: " + s)
                # A progress record is complete before the \r that starts the
                # next one (weft-bots writes each in one write): take it now.
                m = PROGRESS.match(buf.decode("utf-8", "replace").strip())
                if m and re.search(END_SEVERAL if len(procs) > 1 else END_ONE, buf):
                    snapshot(m)
                    buf = b""
            elif p.poll() is not None:
                break
        sel.close()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        self.live = [(x, s) for x, s in self.live if x is not p]
        try:
            out = p.stdout.read().decode("utf-8", "replace")
        except Exception:
            out = ""
        return {"bots_exit_status": p.returncode, "bots_timed_out": timed_out, "bots_stderr": other,
                "bots_summary": out, "ticks": ticks}

    def derive(self, res, procs):
        ticks = res.get("ticks") or []
        rep = res.get("bots_report") or {}
        n = len(procs)
        if len(ticks) >= 2 and ticks[-1]["keys"] > ticks[0]["keys"]:
            a, b = ticks[0], ticks[-1]
            keys = b["keys"] - a["keys"]
            secs = b["mono"] - a["mono"]
            per = 1e6 / keys

            def d(key, i=None):
                x = a[key] if i is None else a[key][i]
                y = b[key] if i is None else b[key][i]
                return None if x is None or y is None else y - x

            # Keystrokes typed by each node's own clients: weft-bots places bot
            # k of document d on URL (d + k) mod N; all bots type at the same
            # rate, so a node's share of the keystrokes is its share of bots.
            urls = rep.get("urls") or []
            total_bots = sum(u.get("bots", 0) for u in urls) or 1
            nodes = []
            for i in range(n):
                c = d("nodes", i)
                share = (urls[i]["bots"] / total_bots) if i < len(urls) else 1.0 / n
                own = keys * share
                nodes.append({"node": f"n{i + 1}" if res["store"] != "sqlite" else "sqlite",
                              "pid": procs[i].pid, "bots": urls[i]["bots"] if i < len(urls) else None,
                              "cpu_s": round(c, 3) if c is not None else None,
                              "percent_of_core": round(100 * c / secs, 1) if c is not None else None,
                              "us_per_keystroke_of_all": round(c * per, 1) if c is not None else None,
                              "own_keystrokes_est": round(own),
                              "us_per_own_keystroke": round(c * 1e6 / own, 1) if c is not None and own else None})
            node_total = sum(x["cpu_s"] for x in nodes if x["cpu_s"] is not None)
            red, pg, bots = d("redis"), d("postgres"), d("bots")
            cpu = {
                "window": {"from_tick_s": a["t"], "to_tick_s": b["t"], "seconds": round(secs, 3), "keystrokes": keys,
                           "keystrokes_per_s": round(keys / secs, 1)},
                "nodes": nodes,
                "nodes_total_us_per_keystroke": round(node_total * per, 1),
                "nodes_max_us_per_own_keystroke": max((x["us_per_own_keystroke"] or 0) for x in nodes),
                "redis_us_per_keystroke": round(red * per, 1) if red is not None else None,
                "redis_percent_of_core": round(100 * red / secs, 1) if red is not None else None,
                "postgres_us_per_keystroke": round(pg * per, 1) if pg is not None else None,
                "postgres_percent_of_core": round(100 * pg / secs, 1) if pg is not None else None,
                "bots_us_per_keystroke": round(bots * per, 1) if bots is not None else None,
                "bots_percent_of_core": round(100 * bots / secs, 1) if bots is not None else None,
            }
            cpu["system_us_per_keystroke"] = round((node_total + (red or 0) + (pg or 0)) * per, 1)
            # Everything else that ran meanwhile (another engineer's compiler,
            # this script, the kernel's own threads): the machine's busy time
            # minus what the processes above used.
            mach = d("machine")
            if mach is not None:
                others = mach - node_total - (red or 0) - (pg or 0) - (bots or 0)
                cpu["machine_percent_of_core"] = round(100 * mach / secs, 1)
                cpu["others_percent_of_core"] = round(100 * others / secs, 1)
            cpu["system_us_per_keystroke_per_node"] = round(cpu["system_us_per_keystroke"] / n, 1) if n else None
            res["cpu"] = cpu
        else:
            res.setdefault("problems", []).append("fewer than two progress ticks: no CPU window")
        lat = rep.get("latency_ms") or {}
        dl = rep.get("delivery_latency_ms") or {}
        conv = bool(rep.get("converged")) and res.get("bots_exit_status") == 0 and not res.get("bots_timed_out")
        res["summary"] = {
            "keystrokes": rep.get("keystrokes"),
            "keystrokes_per_s": rep.get("keystrokes_per_s"),
            "latency_p50_ms": lat.get("p50"), "latency_p99_ms": lat.get("p99"), "latency_max_ms": lat.get("max"),
            "across_nodes_delivery_p50_ms": (dl.get("across_nodes") or {}).get("p50"),
            "across_nodes_delivery_p99_ms": (dl.get("across_nodes") or {}).get("p99"),
            "across_nodes_samples": (dl.get("across_nodes") or {}).get("samples"),
            "same_node_delivery_p99_ms": (dl.get("same_node") or {}).get("p99"),
            "schedule_lag_max_ms": (rep.get("schedule_lag_ms") or {}).get("max"),
            "ops_never_arrived": rep.get("ops_never_arrived"), "errors": rep.get("errors"),
            "disconnects": rep.get("disconnects"), "failovers": rep.get("failovers"),
            "converged": conv, "bots_exit_status": res.get("bots_exit_status"),
            "detail": rep.get("detail"),
        }
        s = res["summary"]
        c = res.get("cpu") or {}
        log(f"    {s['keystrokes_per_s']} keys/s, p50 {s['latency_p50_ms']} / p99 {s['latency_p99_ms']} ms, "
            f"nodes {c.get('nodes_total_us_per_keystroke')} us/key (max per own key "
            f"{c.get('nodes_max_us_per_own_keystroke')}), redis {c.get('redis_us_per_keystroke')}, "
            f"postgres {c.get('postgres_us_per_keystroke')}, bots {c.get('bots_us_per_keystroke')}; "
            f"converged {s['converged']} (exit {s['bots_exit_status']})")


def machine_info():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with open("/proc/meminfo") as f:
        mem = f.readline().split(":", 1)[1].strip()
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return ""
    return {"cpu_model": model, "cores": os.cpu_count(), "memory": mem, "kernel": os.uname().release,
            "git_head": git("rev-parse", "HEAD"),
            "git_uncommitted_src": git("status", "--short", "--", "src", "load_tests").splitlines()}


def disturbed(res, a):
    """Why a run's figures may be another process's doing, or None."""
    mb = res["machine_before"]
    if not mb["quiet"]:
        return (f"not quiet before: load {mb['loadavg_1_5_15'][0]}, {mb['busy_percent_of_all_cores_2s']}% busy "
                f"after waiting {mb['waited_s']} s")
    others = (res.get("cpu") or {}).get("others_percent_of_core")
    if others is not None and others > a.others_threshold:
        return f"other processes used {others}% of a core during the run"
    return None


def targets(runs, a):
    """The issue's targets, judged on the measured figures: each PostgreSQL
    run against the SQLite run of the same load."""
    out = []
    for r in runs:
        if r["store"] == "sqlite":
            continue
        base = next((b for b in runs if b["store"] == "sqlite" and b["kind"] == r["kind"]
                     and b["docs"] == r["docs"] and b["bots_per_doc"] == r["bots_per_doc"]), None)
        bcpu = ((base or {}).get("cpu") or {}).get("nodes_total_us_per_keystroke")
        c = r.get("cpu") or {}
        s = r["summary"]
        node_max = c.get("nodes_max_us_per_own_keystroke")
        t = {"run": r["name"], "baseline": base["name"] if base else None, "baseline_sqlite_us_per_keystroke": bcpu,
             "node_max_us_per_own_keystroke": node_max,
             "cpu_ratio_node_vs_sqlite": round(node_max / bcpu, 2) if bcpu and node_max else None,
             "system_us_per_keystroke_nodes_redis_postgres": c.get("system_us_per_keystroke"),
             "cpu_ratio_system_vs_sqlite": round(c["system_us_per_keystroke"] / bcpu, 2)
             if bcpu and c.get("system_us_per_keystroke") else None}
        t["cpu_target_met"] = t["cpu_ratio_node_vs_sqlite"] is not None and t["cpu_ratio_node_vs_sqlite"] <= 1.3
        if r["nodes"] >= 2:
            p99 = s.get("latency_p99_ms")
            x99 = s.get("across_nodes_delivery_p99_ms")
            t["latency_p99_ms"] = p99
            t["across_nodes_delivery_p99_ms"] = x99
            t["p99_target_met"] = p99 is not None and x99 is not None and p99 <= 5 and x99 <= 5
        t["machine_quiet_before"] = r["machine_before"]["quiet"]
        t["disturbed"] = r.get("disturbed")
        t["others_percent_of_core_during"] = c.get("others_percent_of_core")
        t["machine_percent_of_core_during"] = c.get("machine_percent_of_core")
        out.append(t)
    return out


def table(runs):
    lines = ["| run | load avg before | keystrokes/s | p50 / p99 ms (across nodes p99) | node CPU µs per own keystroke (each) | "
             "nodes total µs/key | Redis µs/key | PostgreSQL µs/key | bots µs/key | others, % of a core | converged |",
             "|---|---|---:|---|---|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        s, c = r["summary"], r.get("cpu") or {}
        la = r["machine_before"]["loadavg_1_5_15"]
        each = " / ".join(str(x["us_per_own_keystroke"]) for x in c.get("nodes", []))
        x99 = s.get("across_nodes_delivery_p99_ms")
        lat = (f"{s['latency_p50_ms']:.2f} / {s['latency_p99_ms']:.2f}" if s.get("latency_p99_ms") is not None else "-") + \
              (f" ({x99:.2f})" if x99 and r["nodes"] > 1 else "")
        lines.append(f"| {r['name']} | {la[0]:.2f}{' (busy)' if r.get('disturbed') else ''} | "
                     f"{s.get('keystrokes_per_s') or 0:.0f} | {lat} | {each or '-'} | "
                     f"{c.get('nodes_total_us_per_keystroke', '-')} | {c.get('redis_us_per_keystroke') or '-'} | "
                     f"{c.get('postgres_us_per_keystroke') or '-'} | {c.get('bots_us_per_keystroke', '-')} | "
                     f"{c.get('others_percent_of_core', '-')} | "
                     f"{'yes' if s['converged'] else '**NO**'} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="50 documents, 5 s runs, short waits (about a minute)")
    ap.add_argument("--docs", type=int, help="documents of the c4x runs (default 200; --quick 50)")
    ap.add_argument("--bots-per-doc", type=int, default=4)
    ap.add_argument("--rate", type=float, default=5, help="keystrokes per second per bot (default 5)")
    ap.add_argument("--duration", type=int, help="seconds of typing per c4x run (default 15; --quick 5)")
    ap.add_argument("--light-docs", type=int, default=50,
                    help="documents of the c1x runs (scenario c as it is: SQLite and the most nodes; "
                         "full mode only; 0: none; default 50)")
    ap.add_argument("--light-duration", type=int, default=10, help="seconds of typing per c1x run (default 10)")
    ap.add_argument("--hot-bots", type=int, default=20, help="bots on the hot document (default 20)")
    ap.add_argument("--hot-duration", type=int, help="seconds of typing per hot run (default 10; --quick 5)")
    ap.add_argument("--nodes-list", default="1 2 3", help="node counts of the c4x PostgreSQL runs (default \"1 2 3\")")
    ap.add_argument("--only", choices=["c4x", "c1x", "hot"], action="append",
                    help="only these runs (repeatable)")
    ap.add_argument("--server-threads", type=int, default=0, help="weft-server --threads (default: the server's)")
    ap.add_argument("--quiet", type=int, default=15, help="weft-bots --quiet (default 15)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--load-threshold", type=float, default=1.0,
                    help="a run waits for the 1-minute load average below this (default 1.0)")
    ap.add_argument("--busy-threshold", type=float, default=25,
                    help="... and for less than this %% of all cores busy over 2 s (default 25)")
    ap.add_argument("--max-wait", type=int, help="seconds to wait for the load to fall before a run (default 75; --quick 10)")
    ap.add_argument("--others-threshold", type=float, default=15,
                    help="a run during which other processes used more than this %% of a core is disturbed (default 15)")
    ap.add_argument("--retries", type=int, default=1,
                    help="run a disturbed run again up to this many times (default 1; --quick 0)")
    ap.add_argument("--retry-until", type=int, default=420,
                    help="no reruns once the benchmark has run this many seconds (default 420)")
    ap.add_argument("--node-arg", action="append", default=[], metavar="ARG",
                    help="one more argument for every PostgreSQL node (repeatable), e.g. --node-arg=--commit-window-ms "
                         "--node-arg=5")
    ap.add_argument("--out", help="JSON file (default bench/results/scaleout-DATE[-quick].json)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = ap.parse_args()
    a.docs = a.docs or (50 if a.quick else 200)
    a.duration = a.duration or (5 if a.quick else 15)
    a.hot_duration = a.hot_duration or (5 if a.quick else 10)
    if a.quick and "--retries" not in sys.argv:
        a.retries = 0
    a.max_wait = a.max_wait if a.max_wait is not None else (10 if a.quick else 75)
    nodes_list = [int(x) for x in a.nodes_list.split()]
    for v in [a.docs, a.bots_per_doc, a.duration, a.hot_bots, a.hot_duration] + nodes_list:
        if v <= 0:
            ap.error("counts and durations must be positive")
    ramp = 1 if a.quick else 2

    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    except Exception:
        pass

    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    bench = Bench(a)
    atexit.register(bench.cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    runs = []
    discarded = []
    info = {"date": started.date().isoformat(), "started_at": started.isoformat(timespec="seconds"),
            "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
            "machine": machine_info(),
            "binaries": {b: {"path": os.path.relpath(b, ROOT),
                             "mtime": datetime.datetime.fromtimestamp(os.path.getmtime(b), datetime.timezone.utc)
                             .isoformat(timespec="seconds")} for b in (bench.server_bin, bench.bots_bin)},
            "config": {"quick": a.quick, "c4x": {"docs": a.docs, "bots_per_doc": a.bots_per_doc, "rate": a.rate,
                                                  "duration_s": a.duration, "ramp_s": ramp, "nodes": [1] + nodes_list},
                       "c1x": None if a.quick or not a.light_docs else
                       {"docs": a.light_docs, "bots_per_doc": a.bots_per_doc, "rate": a.rate,
                        "duration_s": a.light_duration, "nodes": [1, max(nodes_list)]},
                       "hot": {"docs": 1, "bots_per_doc": a.hot_bots, "rate": a.rate, "duration_s": a.hot_duration},
                       "server_threads": a.server_threads or "server default (one per core)",
                       "load_threshold": a.load_threshold, "busy_threshold_percent": a.busy_threshold,
                       "others_threshold_percent_of_core": a.others_threshold, "retries": a.retries,
                       "node_args": a.node_arg, "max_wait_s": a.max_wait, "seed": a.seed}}
    info["binaries"] = {os.path.basename(k): v for k, v in info["binaries"].items()}
    out = a.out or os.path.join(ROOT, "bench", "results",
                                f"scaleout-{info['date']}{'-quick' if a.quick else ''}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)

    def save(partial):
        info["complete"] = not partial
        info["runs"] = runs
        info["discarded_runs"] = discarded
        with open(out, "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")

    try:
        log(f"machine: {info['machine']['cpu_model']}, {info['machine']['cores']} cores; {uptime_text()}")
        log("starting PostgreSQL")
        bench.pg = Postgres(bench.tmp)
        info["postgres"] = {"version": bench.pg.version, "settings": bench.pg.settings, "port": bench.pg.port,
                            "initdb_command": bench.pg.initdb_cmd, "start_command": bench.pg.start_cmd}
        info["redis"] = {"version": subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                                                   timeout=10).stdout.strip()}
        # (--quick's c runs have 50 documents: not "c4x".)
        groups = [("c" if a.quick else "c4x", a.docs, a.bots_per_doc, a.duration, ramp, [1] + nodes_list)]
        if not a.quick and a.light_docs:
            groups.append(("c1x", a.light_docs, a.bots_per_doc, a.light_duration, 1, [1, max(nodes_list)]))
        groups.append(("hot", 1, a.hot_bots, a.hot_duration, 1, [1, 1, 3]))
        for kind, docs, bots, duration, rmp, configs in groups:
            if a.only and kind not in a.only and not (kind == "c" and "c4x" in a.only):
                continue
            label = f"{docs}x{bots}"
            for i, n in enumerate(configs):
                store = "sqlite" if i == 0 else "postgres+redis"
                name = f"{kind}-{label}-{'sqlite' if i == 0 else 'pg'}-{n}"
                for attempt in range(a.retries + 1):
                    res = bench.run(name, kind, store, n, docs, bots, duration, rmp)
                    why = disturbed(res, a)
                    res["disturbed"] = why
                    if not why or attempt == a.retries:
                        break
                    if time.monotonic() - t_start > a.retry_until:
                        log(f"    {name}: {why}; no time left to run it again (--retry-until {a.retry_until} s)")
                        break
                    log(f"    {name}: {why}; running it again")
                    discarded.append(res)
                runs.append(res)
                save(partial=True)
    finally:
        bench.cleanup()

    info["runs"] = runs
    info["discarded_runs"] = discarded
    info["targets"] = targets(runs, a)
    info["busy_runs"] = [r["name"] for r in runs if r.get("disturbed")]
    info["total_runtime_s"] = round(time.monotonic() - t_start, 1)
    info["table_markdown"] = table(runs)
    save(partial=False)
    print(info["table_markdown"])
    print()
    for t in info["targets"]:
        if t["cpu_ratio_node_vs_sqlite"] is None:
            print(f"{t['run']}: no figures (see 'problems' in the JSON)")
            continue
        line = (f"{t['run']}: node CPU {t['node_max_us_per_own_keystroke']} µs per own keystroke = "
                f"{t['cpu_ratio_node_vs_sqlite']}× SQLite ({t['baseline_sqlite_us_per_keystroke']}): "
                f"{'met' if t['cpu_target_met'] else 'MISSED'} (≤ 1.3×); with Redis + PostgreSQL "
                f"{t['cpu_ratio_system_vs_sqlite']}×")
        if "p99_target_met" in t:
            line += (f"; p99 {t['latency_p99_ms']} ms, across nodes {t['across_nodes_delivery_p99_ms']} ms: "
                     f"{'met' if t['p99_target_met'] else 'MISSED'} (≤ 5 ms)")
        print(line)
    if info["busy_runs"]:
        print("machine not quiet (see 'disturbed' in the JSON): " + ", ".join(
            f"{r['name']} ({r['disturbed']})" for r in runs if r.get("disturbed")) + "; run again when it is quiet")
    print(f"wrote {os.path.relpath(out, ROOT)} ({info['total_runtime_s']} s)")
    ok = runs and all(r["summary"]["converged"] and not r.get("problems") for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
