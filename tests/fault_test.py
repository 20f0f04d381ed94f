#!/usr/bin/env python3
"""Fault injection: a disk that refuses writes never takes scoredb down and
never costs an acknowledged score (docs/reliability.md).

The disk is tests/fault/fault.c, an LD_PRELOAD shim that fails the Nth and
later write/pwrite/writev/msync/fsync/fdatasync/ftruncate/fallocate calls
on the store's files with ENOSPC or EIO, while a switch file exists (the
test fills the disk by creating it and frees it by removing it). Each case
starts `scoredb serve` on a copy of a small store, under the shim:

  * ingest on the native, Langfuse and Helicone routes answers 200 or
    507, and a 507 names the store's directory; nothing else;
  * queries and names (which fold first) answer 200 throughout;
  * the server is alive at the end; /healthz says "degraded" naming the
    store while the disk stays full, and "ok" within seconds of the switch
    going away, after which ingest answers 200 again;
  * after a SIGKILL and a restart without the shim, every acknowledged
    score is there with its last acknowledged value, the count is exactly
    the acknowledged ids (a refused batch left nothing behind), and
    `scoredb check` finds the store consistent.

Further cases: the server starts on a disk that is full from its first
call, with scores waiting to be folded (the fold at start fails); a store
whose writable open fails is served read-only and becomes writable again;
the CLI's ingest fails naming the store and its query answers from what is
folded.

    SCOREDB=build/scoredb SCOREDB_FAULT_SO=build/fault.so python3 tests/fault_test.py [--long]

`make test` runs a slice of the matrix; `--long` (make test-long) runs all
of it. The last line reads "fault: N passed, M failed; F faults injected in
C cases". Servers listen on 127.0.0.1 with an ephemeral port only.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import crash_test as ct  # noqa: E402  (serve, request, check, check_store)

BIN = ct.BIN
SHIM = os.environ.get("SCOREDB_FAULT_SO", os.path.join(HERE, "..", "build", "fault.so"))
LONG = "--long" in sys.argv
T0 = 1767225600000
STATS = {"faults": 0, "cases": 0}


def preload(log):
    """The environment that loads the shim (and logs its faults to log)."""
    return {"LD_PRELOAD": os.path.abspath(SHIM), "SDB_FAULT_LOG": log,
            # an ASan build links its runtime first; the shim only wraps libc
            "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") +
                             ":verify_asan_link_order=0").lstrip(":")}


def shim_env(db, err, at=1, count=0, ops=None, switch=None, log=None):
    e = preload(log or os.devnull)
    e.update({"SDB_FAULT_AT": str(at), "SDB_FAULT_COUNT": str(count), "SDB_FAULT_ERRNO": err,
              "SDB_FAULT_PATH": os.path.abspath(db)})
    if ops:
        e["SDB_FAULT_OPS"] = ops
    if switch:
        e["SDB_FAULT_SWITCH"] = switch
    return e


def faults_in(log):
    try:
        with open(log) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def finish(db, log, what):
    """Count a case's faults (a case under the shim must have had some: a
    shim that failed to load would pass every case); the store it leaves
    must check clean."""
    if log != os.devnull:
        ct.check(faults_in(log) > 0, "%s: the shim injected faults" % what)
    STATS["faults"] += faults_in(log)
    STATS["cases"] += 1
    ct.check_store(db, what)


def names_store(body, db):
    return os.path.abspath(db) in body or db in body


def post(port, path, obj):
    return ct.request(port, "POST", path, json.dumps(obj))


def count_of(port, name):
    st, body = post(port, "/v1/query", {"name": name, "stats": ["count"]})
    if st != 200:
        return st, -1
    g = json.loads(body)["groups"]
    return st, g[0]["count"] if g else 0


def wait_health(port, want, seconds=6):
    deadline = time.time() + seconds
    body = ""
    while time.time() < deadline:
        st, body = ct.request(port, "GET", "/healthz")
        if st == 200 and json.loads(body)["status"] == want:
            return True, body
        time.sleep(0.1)
    return False, body


def wait_metrics(port, pred, seconds=6):
    """/metrics until pred(body) holds: a request is counted when
    libmicrohttpd reports it completed (MHD_OPTION_NOTIFY_COMPLETED), which
    may come after the client has read the answer, so a /metrics sent
    right after it can miss it on a loaded machine."""
    deadline = time.time() + seconds
    body = ""
    while time.time() < deadline:
        st, body = ct.request(port, "GET", "/metrics")
        if st == 200 and pred(body):
            return True, body
        time.sleep(0.1)
    return False, body


def make_template(tmp):
    """A small store: 100 folded scores (ids base-*)."""
    db = os.path.join(tmp, "template")
    proc, port = ct.serve(db)
    try:
        st, _ = post(port, "/v1/scores", [{"id": "base-%d" % k, "name": "fault", "value": k,
                                           "trace_id": "t", "timestamp": T0 + k}
                                          for k in range(100)])
        ct.check(st == 200, "template ingest: %d" % st)
        ct.check(count_of(port, "fault")[1] == 100, "template holds 100 scores")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    return db


def copy_store(template, db):
    shutil.copytree(template, db)
    return db


def workload(db, port, switch, fill_at, acked, hc, bad):
    """Six rounds of native, Langfuse (one score, a batch) and Helicone
    ingest and two reads;
    acked gets what was acknowledged (id: value), hc the acknowledged
    Helicone rounds, bad what was wrong."""
    for b in range(6):
        if b == fill_at and b:
            open(switch, "w").close()  # the disk fills while the server runs
        # batches 2..5 also re-send ids of the batch two before: replacement
        scores = [{"id": "f-%d-%d" % (b, k), "name": "fault", "value": 1000 * b + k,
                   "trace_id": "t", "timestamp": T0 + b * 1000 + k} for k in range(20)]
        if b >= 2:
            scores += [{"id": "f-%d-%d" % (b - 2, k), "name": "fault",
                        "value": 1000 * b + 500 + k, "trace_id": "t",
                        "timestamp": T0 + (b - 2) * 1000 + k} for k in range(5)]
        st, body = post(port, "/v1/scores", scores)
        if st == 200:
            acked.update({s["id"]: s["value"] for s in scores})
        elif st != 507 or not names_store(body, db):
            bad.append("native ingest %d %s" % (st, body[:200]))
        st, body = post(port, "/api/public/scores",
                        {"id": "lf-%d" % b, "name": "lf", "value": b, "traceId": "t"})
        if st == 200:
            acked["lf-%d" % b] = b
        elif st != 507 or not names_store(body, db):
            bad.append("langfuse ingest %d %s" % (st, body[:200]))
        st, body = post(port, "/api/public/ingestion", {"batch": [
            {"id": "ev-%d" % b, "type": "score-create", "timestamp": "2026-01-01T00:00:00Z",
             "body": {"id": "lfb-%d" % b, "name": "lfb", "value": b, "traceId": "t"}}]})
        if st == 207 and '"successes":[{' in body:
            acked["lfb-%d" % b] = b
        elif st != 507 or not names_store(body, db):
            bad.append("langfuse batch ingest %d %s" % (st, body[:200]))
        st, body = post(port, "/v1/request/r%d/score" % b, {"scores": {"hq": b}})
        if st == 200:  # Helicone documents 200 (was 201 before issue 10)
            hc.append(b)
        elif st != 507 or not names_store(body, db):
            bad.append("helicone ingest %d %s" % (st, body[:200]))
        st, n = count_of(port, "fault")
        if st != 200 or n < 100:
            bad.append("query while failing: %d count %d" % (st, n))
        st, body = ct.request(port, "GET", "/v1/names")
        if st != 200:
            bad.append("names while failing: %d %s" % (st, body[:200]))


def server_case(tmp, template, err, ops, at, count, fill_at=0):
    """Ingest, fold and query through a disk that fails from the at-th call
    on (count calls, 0: until the switch goes) once batch fill_at is
    reached, then free it, kill, restart and verify."""
    tag = "%s-%s-%d-%d-%d" % (err, ops or "all", at, count, fill_at)
    what = "case %s" % tag
    db = copy_store(template, os.path.join(tmp, "s-" + tag.replace(",", "_")))
    switch, log = db + ".full", db + ".faults"
    if fill_at == 0:
        open(switch, "w").close()
    lines = []
    try:
        proc, port = ct.serve(db, env=shim_env(db, err, at, count, ops, switch, log), log=lines)
    except RuntimeError as e:
        ct.check(False, "%s: the server starts: %s" % (what, e))
        return
    acked = {"base-%d" % k: k for k in range(100)}
    bad, hc = [], []
    try:
        workload(db, port, switch, fill_at, acked, hc, bad)
    except OSError as e:  # the server died under the fault
        bad.append("connection: %s" % e)
    try:
        lf_acked = sum(1 for i in acked if i.startswith("lf"))
        hc_acked = len(hc)
        ct.check(not bad, "%s: answers while the disk fails: %s" % (what, bad[:3]))
        ct.check(proc.poll() is None, "%s: the server is alive (rc %s; %s)"
                 % (what, proc.poll(), "".join(lines)[-300:]))
        if proc.poll() is not None:
            return
        injected = faults_in(log)
        if injected and count == 0:
            ok, body = wait_health(port, "degraded", 3)
            ct.check(ok and names_store(body, db),
                     "%s: /healthz degraded naming the store: %s" % (what, body[:300]))
        if os.path.exists(switch):
            os.unlink(switch)  # space returns
        ok, body = wait_health(port, "ok")
        ct.check(ok, "%s: /healthz ok once the disk takes writes: %s" % (what, body[:300]))
        st, body = post(port, "/v1/scores", [{"id": "after", "name": "fault", "value": 7,
                                              "trace_id": "t", "timestamp": T0}])
        ct.check(st == 200, "%s: ingest after space returns: %d %s" % (what, st, body[:200]))
        if st == 200:
            acked["after"] = 7
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ct.check(faults_in(log) > 0, "%s: the shim injected faults" % what)
    STATS["faults"] += faults_in(log)
    STATS["cases"] += 1

    proc, port = ct.serve(db)
    try:
        n_fault = sum(1 for i in acked if not i.startswith("lf"))
        st, n = count_of(port, "fault")
        ct.check(n == n_fault, "%s: %d scores after restart, %d acknowledged" % (what, n, n_fault))
        n = count_of(port, "lf")[1] + count_of(port, "lfb")[1]
        ct.check(n == lf_acked, "%s: %d langfuse scores, %d acknowledged" % (what, n, lf_acked))
        st, n = count_of(port, "hq")
        ct.check(max(n, 0) == hc_acked, "%s: %d helicone scores, %d acknowledged"
                 % (what, n, hc_acked))
        lost = []
        for i, v in acked.items():
            st, body = ct.request(port, "GET", "/v1/scores/" + i)
            if st != 200 or json.loads(body)["value"] != v:
                lost.append((i, v, st, body[:100]))
        ct.check(not lost, "%s: acknowledged scores lost or changed: %d %s"
                 % (what, len(lost), lost[:2]))
        STATS["lost"] = STATS.get("lost", 0) + len(lost)
        STATS["acked"] = STATS.get("acked", 0) + len(acked)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    ct.check_store(db, what)
    shutil.rmtree(db, ignore_errors=True)


def start_on_full_disk(tmp, template, err):
    """Scores wait to be folded and the disk is full from the first call:
    the server starts, answers reads, refuses writes, resumes."""
    what = "start on a full disk (%s)" % err
    db = copy_store(template, os.path.join(tmp, "start-" + err))
    proc, port = ct.serve(db, delay="1h")  # these stay pending
    st, _ = post(port, "/v1/scores", [{"id": "p-%d" % k, "name": "fault", "value": k,
                                       "trace_id": "t", "timestamp": T0} for k in range(10)])
    ct.check(st == 200, "%s: pending ingest %d" % (what, st))
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    switch, log = db + ".full", db + ".faults"
    open(switch, "w").close()
    lines = []
    try:
        proc, port = ct.serve(db, env=shim_env(db, err, 1, 0, None, switch, log), log=lines)
    except RuntimeError as e:
        ct.check(False, "%s: the server starts: %s" % (what, e))
        return
    try:
        st, n = count_of(port, "fault")
        ct.check(st == 200 and n == 100, "%s: query answers from what is folded: %d %d"
                 % (what, st, n))
        st, body = post(port, "/v1/scores", [{"id": "x", "name": "fault", "value": 1,
                                              "trace_id": "t"}])
        ct.check(st == 507 and names_store(body, db), "%s: ingest 507: %d %s"
                 % (what, st, body[:200]))
        ok, body = wait_health(port, "degraded", 3)
        ct.check(ok, "%s: /healthz degraded: %s" % (what, body[:200]))
        ct.check(proc.poll() is None, "%s: alive" % what)
        ok, m = wait_metrics(port, lambda m: "scoredb_store_writable 0" in m and
                             'route="scores_post",status="507"} 1' in m)
        ct.check(ok, "%s: /metrics counts the 507 and the store unwritable: %s"
                 % (what, m[-300:]))
        os.unlink(switch)
        ok, body = wait_health(port, "ok")
        ct.check(ok, "%s: /healthz ok after space returns: %s" % (what, body[:200]))
        st, m = ct.request(port, "GET", "/metrics")
        ct.check("scoredb_store_writable 1" in m, "%s: /metrics: writable again" % what)
        st, n = count_of(port, "fault")
        ct.check(n == 110, "%s: the pending scores fold once space returns: %d" % (what, n))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finish(db, log, what)


def read_only_fallback(tmp, template):
    """The writable open fails (a lock file that cannot be allocated): the
    server serves reads read-only, then the probe makes it writable."""
    what = "read-only fallback"
    db = copy_store(template, os.path.join(tmp, "ro"))
    os.unlink(os.path.join(db, "lock.mdb"))
    log = db + ".faults"
    lines = []
    proc, port = ct.serve(db, env=shim_env(db, "ENOSPC", 1, 1, "fallocate", None, log),
                          log=lines)
    try:
        ct.check(any("serving reads" in ln for ln in lines),
                 "%s: the server says it serves reads: %s" % (what, "".join(lines)[-300:]))
        st, n = count_of(port, "fault")
        ct.check(st == 200 and n == 100, "%s: reads answer: %d %d" % (what, st, n))
        ok, body = wait_health(port, "ok")
        ct.check(ok, "%s: writable again: %s" % (what, body[:200]))
        st, body = post(port, "/v1/scores", [{"id": "w", "name": "fault", "value": 1,
                                              "trace_id": "t"}])
        ct.check(st == 200, "%s: ingest after the upgrade: %d %s" % (what, st, body[:200]))
        st, n = count_of(port, "fault")
        ct.check(n == 101, "%s: the new score is there: %d" % (what, n))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    finish(db, log, what)


def create_on_full_disk(tmp, err):
    """No room to create a store: a clear refusal, no crash (LMDB's lock
    file was a SIGBUS here on a full tmpfs), no half-made store left to
    read as corrupt; with room again it is created."""
    what = "creating a store on a full disk (%s)" % err
    db = os.path.join(tmp, "new-" + err)
    log = db + ".faults"
    env = dict(os.environ)
    env.update(shim_env(db, err, 1, 0, None, None, log))
    for cmd in (["serve", "--listen", "127.0.0.1:0"], ["ingest", os.devnull]):
        r = subprocess.run([BIN, cmd[0], "--db", db] + cmd[1:], env=env, capture_output=True,
                           text=True, timeout=20)
        said = r.stderr.lower()
        ct.check(r.returncode == 1 and db in r.stderr and
                 ("no space left" in said or "input/output error" in said),
                 "%s: %s exits 1 naming the store: %d %s" % (what, cmd[0], r.returncode,
                                                             r.stderr[-300:]))
        ct.check(not os.path.exists(os.path.join(db, "data.mdb")),
                 "%s: %s leaves no data file" % (what, cmd[0]))
    r = subprocess.run([BIN, "ingest", "--db", db, "-"], input='{"name":"n","value":1,'
                       '"trace_id":"t"}\n', capture_output=True, text=True)
    ct.check(r.returncode == 0, "%s: with room the store is created: %s" % (what, r.stderr))
    finish(db, log, what)


def cli_cases(tmp, template, err):
    what = "CLI (%s)" % err
    db = copy_store(template, os.path.join(tmp, "cli-" + err))
    log = db + ".faults"
    src = os.path.join(tmp, "cli.ndjson")
    with open(src, "w") as f:
        for k in range(50):
            f.write('{"id":"c%d","name":"fault","value":%d,"trace_id":"t"}\n' % (k, k))
    env = dict(os.environ)
    env.update(shim_env(db, err, 1, 0, None, None, log))
    r = subprocess.run([BIN, "ingest", "--db", db, src], env=env, capture_output=True, text=True)
    ct.check(r.returncode == 1 and names_store(r.stderr, db) and "-11" not in str(r.returncode),
             "%s: ingest on a full disk exits 1 naming the store: %d %s"
             % (what, r.returncode, r.stderr[-300:]))
    # scores waiting to be folded, then a query on a full disk
    proc, port = ct.serve(db, delay="1h")
    st, _ = post(port, "/v1/scores", [{"id": "p-%d" % k, "name": "fault", "value": k,
                                       "trace_id": "t"} for k in range(10)])
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    q = '{"name":"fault","stats":["count"]}'
    r = subprocess.run([BIN, "query", "--db", db, q], env=env, capture_output=True, text=True)
    ct.check(r.returncode == 0 and '"count":100' in r.stdout and "fold failed" in r.stderr,
             "%s: query on a full disk answers from what is folded: %d %s %s"
             % (what, r.returncode, r.stdout[:200], r.stderr[-200:]))
    r = subprocess.run([BIN, "query", "--db", db, q], capture_output=True, text=True)
    ct.check(r.returncode == 0 and '"count":110' in r.stdout,
             "%s: the same query with space folds the rest: %s" % (what, r.stdout[:200]))
    finish(db, log, what)


def map_cannot_grow(tmp):
    """mmap of a larger map fails (the address space is spent): LMDB has
    unmapped the old map by then; the store maps it again and refuses the
    batch, and the server goes on answering instead of crashing on the
    NULL map at its next transaction."""
    what = "a map that cannot grow"
    db = os.path.join(tmp, "nomap")
    log = db + ".faults"
    env = preload(log)
    env["SDB_FAULT_MMAP_MAX"] = str(64 << 20)
    lines = []
    proc, port = ct.serve(db, env=env, log=lines)
    acked, refused = 0, None
    try:
        # 64 MiB, the first map, holds ~1.2M of these (~640k before row
        # blocks were sized to whole pages and segments encoded); bounded
        # at 3M. Each carries a comment of 24 random bytes in hex, as
        # content that no compression takes away: without it, row blocks of
        # format 5 (lengths and refs transposed) fit 3M of these regular
        # scores in 64 MiB.
        rnd = random.Random(20261201)
        for b in range(300):
            batch = json.dumps([{"name": "big", "value": i % 100, "trace_id": "t%d" % i,
                                 "timestamp": T0 + (b * 10000 + i) * 10,
                                 "comment": "%048x" % rnd.getrandbits(192)}
                                for i in range(10000)])
            st, body = ct.request(port, "POST", "/v1/scores", batch)
            if st != 200:
                refused = (st, body)
                break
            acked += 10000
        ct.check(refused is not None and refused[0] == 500 and "out of memory" in refused[1],
                 "%s: the batch that needs a larger map is refused: %s after %d"
                 % (what, refused, acked))
        st, n = count_of(port, "big")
        ct.check(st == 200 and proc.poll() is None, "%s: the server answers after: %d (rc %s)"
                 % (what, st, proc.poll()))
    except OSError as e:
        ct.check(False, "%s: the server died: %s %s" % (what, e, "".join(lines)[-300:]))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc, port = ct.serve(db)
    try:
        st, n = count_of(port, "big")
        ct.check(n == acked, "%s: %d scores after a restart, %d acknowledged" % (what, n, acked))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    finish(db, log, what)


def tmpfs_case(tmp):
    """A real full disk: an 8 MiB tmpfs (--long only, and only where this
    may mount one: the shim cases do not need it). A short write at the end
    of the space comes back from LMDB as EIO; the store tells it is a full
    disk by the free space."""
    mnt = os.path.join(tmp, "tmpfs")
    os.mkdir(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("fault: the tmpfs case did not run (mount: %s)" % r.stderr.strip()[:100])
        return
    what = "a full 8 MiB tmpfs"
    db = os.path.join(mnt, "db")
    try:
        ballast = os.path.join(mnt, "ballast")
        with open(ballast, "wb") as f:
            f.write(b"\0" * (3 << 20))
        proc, port = ct.serve(db)
        acked, refused = [], None
        try:
            for b in range(400):
                ids = ["t%d-%d" % (b, k) for k in range(500)]
                st, body = post(port, "/v1/scores", [{"id": i, "name": "full", "value": 1,
                                                      "trace_id": i} for i in ids])
                if st == 200:
                    acked += ids
                else:
                    refused = (st, body)
                    break
            ct.check(refused and refused[0] == 507 and "no space left on device" in refused[1]
                     and db in refused[1], "%s: 507 naming the disk: %s after %d"
                     % (what, refused, len(acked)))
            st, n = count_of(port, "full")
            ct.check(st == 200, "%s: queries answer: %d" % (what, st))
            ok, body = wait_health(port, "degraded", 3)
            ct.check(ok and "no space left" in body, "%s: /healthz degraded: %s" % (what, body))
            os.unlink(ballast)  # space returns
            ok, body = wait_health(port, "ok")
            ct.check(ok, "%s: /healthz ok once 3 MiB are free: %s" % (what, body))
            st, n = count_of(port, "full")
            ct.check(n == len(acked), "%s: %d folded of %d acknowledged" % (what, n, len(acked)))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        proc, port = ct.serve(db)
        try:
            lost = sum(ct.request(port, "GET", "/v1/scores/" + i)[0] != 200 for i in acked[::50])
            ct.check(lost == 0, "%s: %d of every 50th acknowledged score lost" % (what, lost))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        finish(db, os.devnull, what)
        print("fault: %s: %d scores acknowledged, then 507; all there after a restart"
              % (what, len(acked)))
    finally:
        subprocess.run(["umount", mnt])


def main():
    if not os.path.exists(SHIM):
        print("fault: the shim %s is not built (make %s)" % (SHIM, SHIM), file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="scoredb-fault-")
    t0 = time.time()
    try:
        template = make_template(tmp)
        if LONG:
            matrix = [(e, o, at, c, f) for e in ("ENOSPC", "EIO")
                      for o in (None, "pwrite,writev", "fdatasync,fsync,msync")
                      for at in range(1, 13) for c in (0, 1) for f in (0, 2)]
        else:
            matrix = [("ENOSPC", None, 1, 0, 1), ("EIO", None, 2, 0, 0),
                      ("ENOSPC", None, 3, 1, 0), ("EIO", "fdatasync,fsync,msync", 1, 1, 2)]
        for case in matrix:
            server_case(tmp, template, *case)
        for e in ("ENOSPC", "EIO") if LONG else ("ENOSPC",):
            start_on_full_disk(tmp, template, e)
            create_on_full_disk(tmp, e)
            cli_cases(tmp, template, e)
        read_only_fallback(tmp, template)
        map_cannot_grow(tmp)
        if LONG:
            tmpfs_case(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("fault: %d cases in %.1f s; %d faults injected; %d acknowledged scores checked, "
          "%d lost" % (STATS["cases"], time.time() - t0, STATS["faults"], STATS.get("acked", 0),
                       STATS.get("lost", 0)))
    print("fault: %d passed, %d failed" % (ct.PASSED, ct.FAILED))
    return 1 if ct.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
