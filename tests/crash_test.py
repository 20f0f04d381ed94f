#!/usr/bin/env python3
"""Crash tests: no acknowledged score is ever lost, and a killed writer
never leaves a store that cannot be read.

1. `scoredb serve` takes batches of scores from several client threads and
   is killed with SIGKILL in the middle of the load; a server restarted on
   the same store must hold every score of every batch that was
   acknowledged (HTTP 200), each exactly once (ids are the clients' own).
2. `scoredb ingest` of a large file is killed with SIGKILL mid-way, several
   times at different moments: the store must then answer queries (exit 0)
   with a count that is a whole number of committed chunks, take a new
   ingest, and fold it.
3. The server is killed while it folds a backlog (a fake clock moves past
   the aggregation delay, a query starts the fold, the kill lands at a
   random moment of it): the store is either folded or not, never half,
   and a restart folds it with every acknowledged score counted once.
4. The server is killed while clients re-send stored ids (replacement):
   every id is still there exactly once, with the value of its last
   acknowledged batch or a later one sent.
5. Scores with random UUIDv4 ids (what every Langfuse SDK sends; they go
   through the id index of engine/ids.c): a server under a load of new
   batches and retried (re-sent) acknowledged ones is killed, and after a
   restart every acknowledged id is there once; a CLI ingest of such a file
   is killed and the whole file ingested again, which must leave each id
   exactly once (the committed ones replaced, not doubled).
After every kill `scoredb check` must find the store consistent (segment
aggregates equal a rescan, indexes resolve, folded rows in exactly one
segment).

A process kill leaves the page cache intact, so this checks what LMDB's
commit protocol promises against a crash of the process (atomic commits,
no torn store), not against a power cut. Loads are bounded in count and
time; the server listens on 127.0.0.1 with an ephemeral port only.

    SCOREDB=build/scoredb python3 tests/crash_test.py [--long]

--long (make test-long) kills 200 times in all instead of a dozen.

The last line reads "crash: N passed, M failed".
"""
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("SCOREDB", os.path.join(HERE, "..", "build", "scoredb"))
PASSED = 0
FAILED = 0
LONG = "--long" in sys.argv
KILLS = {"survived": 0}


def kill_load(proc, stop, threads):
    """SIGKILL the server under load, then stop and join the client threads."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    for th in threads:
        th.join()


def check(ok, what):
    global PASSED, FAILED
    if ok:
        PASSED += 1
    else:
        FAILED += 1
        print("FAIL: " + what, file=sys.stderr)


def serve(db, env=None, log=None, delay="0"):
    """Start a server on an ephemeral loopback port; returns (proc, port).
    env: extra environment variables; log: a list that gets the server's
    stderr lines; delay: its aggregation delay."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.Popen([BIN, "serve", "--db", db, "--listen", "127.0.0.1:0",
                          "--aggregation-delay", delay], env=full_env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    seen = []
    while time.time() < deadline:
        line = p.stderr.readline()
        seen.append(line)
        m = re.search(r"\(port (\d+)\)", line)
        if m:
            if log is not None:
                log.extend(seen)

            def drain():  # so that the server never blocks on stderr
                for ln in p.stderr:
                    if log is not None:
                        log.append(ln)
            threading.Thread(target=drain, daemon=True).start()
            return p, int(m.group(1))
        if not line and p.poll() is not None:
            break
    p.kill()
    raise RuntimeError("server did not start: " + "".join(seen)[-500:])


def check_store(db, what):
    """`scoredb check` must find the store consistent."""
    r = subprocess.run([BIN, "check", "--db", db], capture_output=True, text=True)
    check(r.returncode == 0, "scoredb check after %s: %s%s" % (what, r.stdout[-600:],
                                                              r.stderr[-300:]))
    return r.returncode == 0


def request(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body,
                  headers={"Content-Type": "application/json"} if body else {})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def server_crash(tmp, run=0):
    db = os.path.join(tmp, "srv-%d" % run)
    proc, port = serve(db)
    acked = []  # (thread, batch) acknowledged with 200
    lock = threading.Lock()
    stop = threading.Event()
    per_batch = 200

    def client(t):
        for b in range(400):  # bounded; the kill ends it much sooner
            if stop.is_set():
                return
            scores = [{"id": "c%d-%d-%d" % (t, b, k), "name": "crash", "value": k,
                       "trace_id": "t%d" % t, "timestamp": 1767225600000 + b * 1000 + k}
                      for k in range(per_batch)]
            try:
                status, _ = request(port, "POST", "/v1/scores", json.dumps(scores))
            except OSError:
                return
            if status == 200:
                with lock:
                    acked.append((t, b))

    threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    # Kill once a few batches are in, while the clients keep sending; a
    # backup of the live store on the way.
    deadline = time.time() + 20
    backup = os.path.join(tmp, "backup-%d" % run)
    backed = None
    while time.time() < deadline:
        with lock:
            n_acked = len(acked)
        if n_acked >= 4 and backed is None:
            backed = subprocess.run([BIN, "backup", "--db", db, "--out", backup],
                                    capture_output=True, text=True)
        if n_acked >= 12:
            break
        time.sleep(0.01)
    kill_load(proc, stop, threads)
    check(len(acked) >= 12, "the server acknowledged batches before the kill (%d)" % len(acked))
    KILLS["survived"] += check_store(db, "a kill under ingest load")
    check(backed is not None and backed.returncode == 0,
          "backup of the live store: %s" % (backed and backed.stderr))
    if backed is not None and backed.returncode == 0:
        check_store(backup, "a backup of a live store")
        q = subprocess.run([BIN, "query", "--db", backup, json.dumps(
            {"name": "crash", "stats": ["count"]})], capture_output=True, text=True)
        g = json.loads(q.stdout)["groups"] if q.returncode == 0 else []
        nb = g[0]["count"] if g else 0
        check(q.returncode == 0 and nb >= 4 * per_batch and nb % per_batch == 0,
              "the backup holds whole batches, at least the 4 acknowledged: %d" % nb)

    proc, port = serve(db)
    try:
        status, body = request(port, "POST", "/v1/query",
                               json.dumps({"name": "crash", "stats": ["count"]}))
        check(status == 200, "query after restart: %d %s" % (status, body[:200]))
        n = json.loads(body)["groups"][0]["count"] if status == 200 else -1
        check(n >= len(acked) * per_batch,
              "count %d covers the %d acknowledged batches" % (n, len(acked)))
        check(n % per_batch == 0, "count %d is whole batches (a batch is one commit)" % n)
        if not LONG:
            print("crash: server killed after %d acknowledged batches; %d scores after restart"
                  % (len(acked), n))
        missing = 0
        for (t, b) in acked:
            for k in (0, per_batch // 2, per_batch - 1):
                status, _ = request(port, "GET", "/v1/scores/c%d-%d-%d" % (t, b, k))
                missing += status != 200
        check(missing == 0, "%d acknowledged scores missing after restart" % missing)
    finally:
        proc.kill()
        proc.wait()


def cli_crash(tmp):
    src = os.path.join(tmp, "big.ndjson")
    n_lines = 1000000  # about a second of ingest here: the kills land inside it
    with open(src, "w") as f:
        for i in range(n_lines):
            f.write('{"name":"bulk","value":%d,"trace_id":"t%d","timestamp":%d}\n'
                    % (i % 100, i % 5000, 1767225600000 + i * 10))
    # A whole ingest first: its time places the kills inside the next ones.
    db = os.path.join(tmp, "cli-whole")
    t0 = time.time()
    r = subprocess.run([BIN, "ingest", "--db", db, src], capture_output=True, text=True)
    whole = time.time() - t0
    check(r.returncode == 0 and '"accepted":%d,' % n_lines in r.stdout,
          "a whole ingest: %s" % r.stdout[:200])
    for frac in (0.2, 0.5, 0.8, 0.95):
        delay = frac * whole
        db = os.path.join(tmp, "cli-%s" % delay)
        p = subprocess.Popen([BIN, "ingest", "--db", db, src],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if not os.path.exists(os.path.join(db, "data.mdb")):
            continue  # killed before the store existed: nothing to check
        KILLS["survived"] += check_store(db, "a kill of scoredb ingest at %.2fs" % delay)
        q = subprocess.run([BIN, "query", "--db", db, '{"name":"bulk","stats":["count"]}'],
                           capture_output=True, text=True)
        check(q.returncode == 0, "query after a kill at %.2fs: %s" % (delay, q.stderr[:200]))
        count = 0
        if q.returncode == 0:
            groups = json.loads(q.stdout)["groups"]
            count = groups[0]["count"] if groups else 0
        check(count % 20000 == 0 and count <= n_lines,
              "count %d after a kill at %.2fs is whole 20000-row chunks" % (count, delay))
        print("crash: ingest killed at %.2f s: %d of %d scores committed, store reads"
              % (delay, count, n_lines))
        r = subprocess.run([BIN, "ingest", "--db", db, "-"], input='{"name":"after","value":1,'
                           '"trace_id":"t"}\n', capture_output=True, text=True)
        check(r.returncode == 0, "ingest after a kill: %s" % r.stdout[:200])
        q = subprocess.run([BIN, "query", "--db", db, '{"name":"after","stats":["count"]}'],
                           capture_output=True, text=True)
        check(q.returncode == 0 and '"count":1' in q.stdout, "the new score is there: %s"
              % q.stdout[:200])


def count_query(port, name):
    status, body = request(port, "POST", "/v1/query",
                           json.dumps({"name": name, "stats": ["count"]}))
    if status != 200:
        return -1
    g = json.loads(body)["groups"]
    return g[0]["count"] if g else 0


def folded_in(db):
    """How many row records `scoredb check` counts as folded."""
    r = subprocess.run([BIN, "check", "--db", db], capture_output=True, text=True)
    m = re.search(r"\((\d+) folded\)", r.stdout)
    return int(m.group(1)) if m else -1


def fold_crash(tmp, kills, per=100000, run=0):
    """Kill the server while it folds `per` waiting scores, `kills` times."""
    db = os.path.join(tmp, "fold-%d" % run)
    clock = os.path.join(tmp, "fold-%d.clock" % run)
    now = 1767225600000
    env = {"SCOREDB_FAKE_NOW_FILE": clock}

    def set_clock(t):
        with open(clock + ".tmp", "w") as f:
            f.write(str(t))
        os.replace(clock + ".tmp", clock)

    set_clock(now)
    total, fold_s, mid = 0, None, 0
    proc, port = serve(db, env=env, delay="1h")
    try:
        for k in range(kills + 1):
            for b in range(per // 10000):  # pending: the clock has not moved past the delay
                scores = [{"name": "fold", "value": i % 7, "trace_id": "t%d" % i,
                           "timestamp": now + i} for i in range(10000)]
                status, _ = request(port, "POST", "/v1/scores", json.dumps(scores))
                check(status == 200, "fold crash: ingest %d" % status)
                total += 10000 if status == 200 else 0
            before = folded_in_server(port)
            now += 2 * 3600 * 1000
            set_clock(now)
            if fold_s is None:  # the first fold, whole: how long one takes
                t0 = time.time()
                n = count_query(port, "fold")
                fold_s = time.time() - t0
                check(n == total, "fold crash: a whole fold counts %d of %d" % (n, total))
                continue
            th = threading.Thread(target=lambda: _quiet(count_query, port, "fold"))
            th.start()
            time.sleep(random.uniform(0, fold_s * 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            th.join()
            KILLS["survived"] += check_store(db, "a kill during a fold")
            f = folded_in(db)
            check(f in (before, total), "fold crash: %d rows folded after the kill: all (%d) or "
                  "none (%d), never part" % (f, total, before))
            mid += f == before
            proc, port = serve(db, env=env, delay="1h")
            n = count_query(port, "fold")
            check(n == total, "fold crash: %d scores after the restart's fold, %d acknowledged"
                  % (n, total))
    finally:
        proc.kill()
        proc.wait()
    shutil.rmtree(db, ignore_errors=True)
    print("crash: %d kills during folds of %d scores (a fold takes %.2f s): %d before its "
          "commit, %d after" % (kills, per, fold_s or 0, mid, kills - mid))


def folded_in_server(port):
    """Scores analytics see now (what is folded), by the server."""
    return count_query(port, "fold")


def _quiet(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


def export_values(db):
    r = subprocess.run([BIN, "export", "--db", db, "--format", "ndjson"],
                       capture_output=True, text=True)
    rows = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
    return r.returncode, rows


def replace_crash(tmp, kills, n_ids=20000, per=2000):
    """Kill the server while clients re-send stored ids, `kills` times."""
    db = os.path.join(tmp, "replace")
    now = 1767225600000
    proc, port = serve(db)
    ids = ["r-%d" % i for i in range(n_ids)]
    status, _ = request(port, "POST", "/v1/scores", json.dumps(
        [{"id": i, "name": "rep", "value": 0, "trace_id": "t", "timestamp": now + k}
         for k, i in enumerate(ids)]))
    check(status == 200, "replace crash: the first ingest %d" % status)
    last = {i: 0 for i in ids}  # value of the last acknowledged batch per id
    sent = 0
    for k in range(kills):
        acked = []
        stop = threading.Event()

        def client(round0):
            r = round0
            while not stop.is_set() and r < round0 + 50:
                lo = random.randrange(0, n_ids - per)
                batch = [{"id": ids[j], "name": "rep", "value": r, "trace_id": "t",
                          "timestamp": now + j} for j in range(lo, lo + per)]
                try:
                    status, _ = request(port, "POST", "/v1/scores", json.dumps(batch))
                except OSError:
                    return
                if status == 200:
                    acked.append((r, lo))
                r += 1
        base = (k + 1) * 1000
        th = threading.Thread(target=client, args=(base,))
        th.start()
        time.sleep(random.uniform(0.05, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stop.set()
        th.join()
        sent += len(acked)
        for r, lo in acked:
            for j in range(lo, lo + per):
                last[ids[j]] = max(last[ids[j]], r)
        KILLS["survived"] += check_store(db, "a kill during replacement")
        rc, rows = export_values(db)
        got = {}
        for row in rows:
            got.setdefault(row["id"], []).append(row["value"])
        dup = sum(1 for v in got.values() if len(v) > 1)
        check(rc == 0 and len(rows) == n_ids and dup == 0,
              "replace crash: %d rows for %d ids (%d ids twice)" % (len(rows), n_ids, dup))
        behind = [i for i in ids if i in got and got[i][0] < last[i]]
        missing = [i for i in ids if i not in got]
        check(not behind and not missing,
              "replace crash: %d ids lost an acknowledged value, %d ids missing: %s"
              % (len(behind), len(missing), (behind + missing)[:3]))
        proc, port = serve(db)
    proc.kill()
    proc.wait()
    print("crash: %d kills during replacement of %d-id batches (%d batches acknowledged); "
          "every id once, no acknowledged value lost" % (kills, per, sent))


def uuid4_id_crash(tmp):
    import uuid
    db = os.path.join(tmp, "uuid4-srv")
    proc, port = serve(db)
    acked = []  # (thread, batch, ids)
    lock = threading.Lock()
    stop = threading.Event()
    per_batch = 100

    def client(t):
        mine = []
        for b in range(400):  # bounded; the kill ends it much sooner
            if stop.is_set():
                return
            if mine and b % 3 == 2:  # an SDK retrying a whole acknowledged batch
                ids = mine[b % len(mine)]
            else:
                ids = [str(uuid.uuid4()) for _ in range(per_batch)]
            scores = [{"id": i, "name": "u4", "value": 1, "trace_id": "t%d" % t,
                       "timestamp": 1767225600000 + b * 1000 + k} for k, i in enumerate(ids)]
            try:
                status, _ = request(port, "POST", "/v1/scores", json.dumps(scores))
            except OSError:
                return
            if status == 200:
                mine.append(ids)
                with lock:
                    acked.append(ids)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    deadline = time.time() + 20
    while time.time() < deadline:
        with lock:
            if len(acked) >= 30:
                break
        time.sleep(0.01)
    kill_load(proc, stop, threads)
    distinct = {i for ids in acked for i in ids}
    check(len(acked) >= 30, "uuid4: batches acknowledged before the kill (%d)" % len(acked))
    check_store(db, "a kill under a UUIDv4 load")
    proc, port = serve(db)
    try:
        status, body = request(port, "POST", "/v1/query",
                               json.dumps({"name": "u4", "stats": ["count"]}))
        n = json.loads(body)["groups"][0]["count"] if status == 200 else -1
        check(n >= len(distinct) and n % per_batch == 0,
              "uuid4: count %d holds the %d acknowledged ids, whole batches, no retry twice"
              % (n, len(distinct)))
        # Every acknowledged id, not a sample: row blocks are compressed
        # off the writer and put at commit, so a block lost between the
        # two would drop whole runs of ~200 consecutive scores.
        missing = 0
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # one keep-alive
        try:
            for i in distinct:
                c.request("GET", "/v1/scores/" + i)
                r = c.getresponse()
                r.read()
                missing += r.status != 200
        finally:
            c.close()
        check(missing == 0, "uuid4: %d of %d acknowledged ids missing after restart"
              % (missing, len(distinct)))
        print("crash: uuid4 server killed after %d acknowledged batches (%d ids); %d scores"
              % (len(acked), len(distinct), n))
    finally:
        proc.kill()
        proc.wait()

    src = os.path.join(tmp, "uuid4.ndjson")
    n_lines = 300000
    with open(src, "w") as f:
        for i in range(n_lines):
            f.write('{"id":"%s","name":"u4","value":%d,"trace_id":"t%d","timestamp":%d}\n'
                    % (uuid.uuid4(), i % 100, i % 5000, 1767225600000 + i * 10))
    db = os.path.join(tmp, "uuid4-cli")
    t0 = time.time()
    r = subprocess.run([BIN, "ingest", "--db", os.path.join(tmp, "uuid4-whole"), src],
                       capture_output=True, text=True)
    whole = time.time() - t0
    check(r.returncode == 0, "uuid4: a whole ingest: %s" % r.stdout[:200])
    p = subprocess.Popen([BIN, "ingest", "--db", db, src],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5 * whole)
    p.send_signal(signal.SIGKILL)
    p.wait()
    if os.path.exists(os.path.join(db, "data.mdb")):
        check_store(db, "a kill during a UUIDv4 ingest")
    counts = []
    for _ in range(2):
        r = subprocess.run([BIN, "ingest", "--db", db, src], capture_output=True, text=True)
        check(r.returncode == 0, "uuid4: ingest again after the kill: %s" % r.stderr[:200])
        q = subprocess.run([BIN, "query", "--db", db, '{"name":"u4","stats":["count","sum"]}'],
                           capture_output=True, text=True)
        g = json.loads(q.stdout)["groups"][0] if q.returncode == 0 else {}
        counts.append(g.get("count"))
        check(g.get("count") == n_lines and g.get("sum") == sum(i % 100 for i in range(n_lines)),
              "uuid4: after the kill and a full re-ingest each id is there once: %s" % g)
    print("crash: uuid4 ingest killed at %.2f s, then re-ingested twice: counts %s of %d"
          % (0.5 * whole, counts, n_lines))


def main():
    tmp = tempfile.mkdtemp(prefix="scoredb-crash-")
    t0 = time.time()
    try:
        # make test: 1 + 4 + 3 + 3 kills; --long: 200 in all
        for run in range(40 if LONG else 1):
            server_crash(tmp, run)
        cli_crash(tmp)
        for run in range(13 if LONG else 1):  # a new store every 6 kills keeps checks short
            fold_crash(tmp, 6 if LONG else 3, run=run)
        replace_crash(tmp, 78 if LONG else 3)
        uuid4_id_crash(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("crash: %d kills survived in %.0f s (scoredb check clean after each)"
          % (KILLS["survived"], time.time() - t0))
    print("crash: %d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
