#!/usr/bin/env python3
"""Independent check of `scoredb ingest` + `scoredb query` against API.md.

A reference written apart from the engine (it shares no code with it, only
API.md): generates ~100k scores (fixed seed) in API.md's shapes — every
data type, mixed time formats and offsets, replacements by id within and
across files, a malformed file that must change nothing — ingests them with
the CLI into fresh stores, computes every answer with plain Python (filter,
sort, count; exact fractions for stddev), and compares field by field:
counts exactly, floats to 1e-9 relative.

    python3 tests/reference/check.py [--seed N] [--queries N] [--scale F] [--kernels]

SCOREDB=/path/to/scoredb picks the binary (default build/scoredb beside this
tree); VERIFY_WORK the scratch directory (default a new one under /tmp,
removed at the end when everything matched). Exit status 0 when everything
matched, 1 otherwise; the last line reads "reference: N passed, M failed"
and the failures are written to WORK/failures.jsonl (query, expected,
actual, first difference). `make test` runs it at --scale 0.5.
"""
import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("SCOREDB", os.path.join(HERE, "..", "..", "build", "scoredb"))
WORK = os.environ.get("VERIFY_WORK") or None  # set in main()
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DAY = 86400000
HOUR = 3600000
WEEK_ORIGIN = 4 * DAY  # 1970-01-05 was a Monday
T0 = 1767571200000  # 2026-01-05T00:00:00Z, a Monday
SPAN_DAYS = 60
DIMS = ["environment", "model", "prompt_version", "trace_name", "user_id", "author"]
SOURCES = ["API", "EVAL", "ANNOTATION"]
TYPES = ["NUMERIC", "BOOLEAN", "CATEGORICAL"]
REL = 1e-9

FAILS = []
NCHECK = {"queries": 0, "checks": 0}
COVER = {}


def cover(q, exp):
    feats = ["nonempty" if exp else "empty"]
    for k in ("name", "names", "from", "to", "group_by", "interval", "histogram", "percentiles",
              "stats"):
        if k in q:
            feats.append(k)
    for k in (q.get("where") or {}):
        feats.append("where." + k)
    if len(q.get("group_by") or []) > 1:
        feats.append("multi-key group_by")
    if any("categories" in g for g in exp):
        feats.append("categories")
    if any("categories" in g and "avg" in g for g in exp):
        feats.append("mixed-type group")
    if q.get("interval"):
        feats.append("interval " + q["interval"])
    h = q.get("histogram")
    if h is not None:
        feats.append("histogram " + ("fixed" if "min" in h and "max" in h else
                                     "partial" if "min" in h or "max" in h else "own"))
    for f in feats:
        COVER[f] = COVER.get(f, 0) + 1


# ----------------------------------------------------------------- helpers

def iso(ms, frac=3, off_min=0, sep="T"):
    dt = EPOCH + timedelta(milliseconds=ms + off_min * 60000)
    s = dt.strftime("%Y-%m-%d") + sep + dt.strftime("%H:%M:%S")
    if frac:
        s += "." + ("%03d" % (ms % 1000))[:frac]
    if off_min == 0:
        return s + "Z"
    sign = "+" if off_min > 0 else "-"
    a = abs(off_min)
    return s + "%s%02d:%02d" % (sign, a // 60, a % 60)


def out_time(ms):
    return iso(ms, 3)


def fmt_time(rng, ms, style=None):
    """Render epoch ms in one of the accepted input forms; returns (json value, ms)
    where ms may have been rounded so that the form represents it exactly."""
    style = style or rng.choice(["epoch", "z_ms", "z_s", "off_ms", "off_s", "frac1"])
    if style == "epoch":
        return ms, ms
    if style == "z_ms":
        return iso(ms), ms
    if style == "z_s":
        ms -= ms % 1000
        return iso(ms, 0), ms
    if style == "frac1":
        ms -= ms % 100
        return iso(ms, 1), ms
    off = rng.choice([120, -300, 330, 345, -570, 840, -720, 60])
    if style == "off_ms":
        return iso(ms, 3, off), ms
    ms -= ms % 1000
    return iso(ms, 0, off), ms


def close(a, b, scale=1.0):
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return False
    if a == b:
        return True
    d = abs(a - b)
    if a == 0:  # expected exactly 0 (a stddev of equal values, a cancelling sum)
        return d <= 1e-12 * scale
    return d <= REL * max(abs(a), abs(b))


def diff(exp, act, path="", scale=1.0):
    """First difference between expected and actual JSON, or None."""
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            return "%s: expected object, got %r" % (path, act)
        ek, ak = set(exp), set(act)
        if ek != ak:
            return "%s: keys differ: missing %s, extra %s" % (
                path, sorted(ek - ak), sorted(ak - ek))
        for k in exp:
            d = diff(exp[k], act[k], path + "." + k, scale)
            if d:
                return d
        return None
    if isinstance(exp, list):
        if not isinstance(act, list):
            return "%s: expected list, got %r" % (path, act)
        if len(exp) != len(act):
            return "%s: expected %d items, got %d" % (path, len(exp), len(act))
        for i, (e, a) in enumerate(zip(exp, act)):
            d = diff(e, a, "%s[%d]" % (path, i), scale)
            if d:
                return d
        return None
    if isinstance(exp, float) or isinstance(act, float):
        if not close(exp, act, scale):
            return "%s: expected %r, got %r" % (path, exp, act)
        return None
    if exp != act or type(exp) is not type(act) and not (
            isinstance(exp, (int, float)) and isinstance(act, (int, float))):
        return "%s: expected %r, got %r" % (path, exp, act)
    return None


def run(args, stdin=None, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([BIN] + args, input=stdin, capture_output=True, text=True, env=e)
    return p.returncode, p.stdout, p.stderr


def fail(kind, **kw):
    kw["kind"] = kind
    FAILS.append(kw)
    msg = kw.get("msg", "")
    print("FAIL [%s] %s" % (kind, msg[:300]), file=sys.stderr)


def check(cond, kind, **kw):
    NCHECK["checks"] += 1
    if not cond:
        fail(kind, **kw)
    return cond


# ----------------------------------------------------------- reference model

class Row:
    __slots__ = ("id", "name", "type", "value", "label", "ts", "source", "trace", "dims",
                 "tags", "props")


def row_from_obj(o, now_ms=None):
    """The stored score an accepted score object becomes (reference semantics)."""
    r = Row()
    r.id = o.get("id")
    r.name = o["name"]
    v = o["value"]
    dt = o.get("data_type")
    if isinstance(v, bool):
        r.type, r.value, r.label = "BOOLEAN", 1.0 if v else 0.0, None
    elif isinstance(v, str):
        r.type, r.value, r.label = "CATEGORICAL", None, v
    else:
        r.type = "BOOLEAN" if dt == "BOOLEAN" else "NUMERIC"
        r.value, r.label = float(v), None
    if dt is not None:
        assert dt == r.type, (dt, r.type, o)
    ts = o.get("timestamp")
    r.ts = o["_ts"] if ts is not None else now_ms
    r.source = o.get("source") or "API"
    r.trace = o.get("trace_id")
    r.dims = {d: o.get(d) for d in DIMS}
    if r.dims["environment"] is None:
        r.dims["environment"] = "default"
    r.tags = frozenset(o.get("tags") or [])
    r.props = dict(o.get("properties") or {})
    return r


class Store:
    def __init__(self):
        self.by_id = {}
        self.anon = []

    def put(self, o, now_ms=None):
        r = row_from_obj(o, now_ms)
        if r.id is None:
            self.anon.append(r)
        else:
            self.by_id.pop(r.id, None)  # keep insertion order = last write
            self.by_id[r.id] = r

    def rows(self):
        return list(self.by_id.values()) + self.anon


def floordiv(a, b):
    return a // b


def parse_qtime(v):
    if isinstance(v, int):
        return v
    # only the forms fmt_time produces
    s = v
    off = 0
    if s.endswith("Z"):
        s = s[:-1]
    else:
        sign = 1 if s[-6] == "+" else -1
        off = sign * (int(s[-5:-3]) * 60 + int(s[-2:]))
        s = s[:-6]
    date, tm = s.split("T")
    y, mo, d = map(int, date.split("-"))
    frac = 0
    if "." in tm:
        tm, f = tm.split(".")
        frac = int((f + "000")[:3])
    h, mi, se = map(int, tm.split(":"))
    dt = datetime(y, mo, d, h, mi, se, tzinfo=timezone.utc)
    ms = (dt - EPOCH) // timedelta(milliseconds=1) + frac
    return ms - off * 60000


def interval_spec(s):
    n, u = int(s[:-1]), s[-1]
    unit = {"s": 1000, "m": 60000, "h": HOUR, "d": DAY, "w": 7 * DAY}[u]
    return n * unit, (WEEK_ORIGIN if u == "w" else 0)


def quantile_cont(sv, p):
    n = len(sv)
    pos = p / 100.0 * (n - 1)
    lo = int(math.floor(pos))
    if lo >= n:
        lo = n - 1
    frac = pos - lo
    a = sv[lo]
    b = sv[lo + 1] if lo + 1 < n else a
    return a if frac == 0 else a + (b - a) * frac


def numstats(vals, stats):
    out = {}
    n = len(vals)
    s = math.fsum(vals) if n else None
    for st in stats:
        if st == "avg":
            out["avg"] = s / n if n else None
        elif st == "min":
            out["min"] = min(vals) if n else None
        elif st == "max":
            out["max"] = max(vals) if n else None
        elif st == "sum":
            out["sum"] = s if n else None
        elif st == "stddev":
            if n >= 2:
                mean = s / n
                mean += math.fsum(x - mean for x in vals) / n  # one correction step
                m2 = math.fsum((x - mean) ** 2 for x in vals)
                out["stddev"] = math.sqrt(m2 / (n - 1))
            else:
                out["stddev"] = None
    return out


def sort_key(key_tuple):
    return tuple((0, b"") if k is None else (1, k.encode()) for k in key_tuple)


def gb_value(r, g):
    if g == "name":
        return r.name
    if g == "source":
        return r.source
    if g == "data_type":
        return r.type
    if g.startswith("properties."):
        return r.props.get(g[11:])
    return r.dims[g]


def make_pred(q):
    names = None
    if q.get("name") is not None:
        names = {q["name"]}
    elif q.get("names") is not None:
        names = set(q["names"])
    lo = parse_qtime(q["from"]) if q.get("from") is not None else None
    hi = parse_qtime(q["to"]) if q.get("to") is not None else None
    w = q.get("where") or {}
    vf = w.get("value")
    src = set(w["source"]) if "source" in w else None
    typ = set(w["data_type"]) if "data_type" in w else None
    dimf = {d: set(w[d]) for d in DIMS if d in w}
    tags = set(w.get("tags") or [])
    props = w.get("properties") or {}

    def pred(r):
        if names is not None and r.name not in names:
            return False
        if lo is not None and r.ts < lo:
            return False
        if hi is not None and r.ts >= hi:
            return False
        if vf is not None:
            if r.type == "CATEGORICAL":
                return False
            v = r.value
            if "gt" in vf and not v > vf["gt"]:
                return False
            if "gte" in vf and not v >= vf["gte"]:
                return False
            if "lt" in vf and not v < vf["lt"]:
                return False
            if "lte" in vf and not v <= vf["lte"]:
                return False
            if "eq" in vf and not v == vf["eq"]:
                return False
        if src is not None and r.source not in src:
            return False
        if typ is not None and r.type not in typ:
            return False
        for d, allowed in dimf.items():
            if r.dims[d] not in allowed:
                return False
        if tags and not tags <= r.tags:
            return False
        for k, allowed in props.items():
            if r.props.get(k) not in allowed:
                return False
        return True
    return pred, lo, hi


def reference(q, rows):
    pred, lo, hi = make_pred(q)
    gb = q.get("group_by") or []
    stats = q.get("stats") or ["count", "avg", "min", "max"]
    numeric_stats = [s for s in ["avg", "min", "max", "sum", "stddev"] if s in stats]
    if hi is not None and lo is not None and hi <= lo:
        matched = []
    else:
        matched = [r for r in rows if pred(r)]
    groups = {}
    for r in matched:
        groups.setdefault(tuple(gb_value(r, g) for g in gb), []).append(r)
    iv = q.get("interval")
    if iv and matched:
        width, origin = interval_spec(iv)
        first = floordiv(lo - origin, width) if lo is not None else min(
            floordiv(r.ts - origin, width) for r in matched)
        last = floordiv(hi - 1 - origin, width) if hi is not None else max(
            floordiv(r.ts - origin, width) for r in matched)
    out = []
    for key in sorted(groups, key=sort_key):
        grs = groups[key]
        g = {}
        if gb:
            g["key"] = {gname: kv for gname, kv in zip(gb, key)}
        g["count"] = len(grs)
        vals = [r.value for r in grs if r.type != "CATEGORICAL"]
        cats = [r.label for r in grs if r.type == "CATEGORICAL"]
        numeric = len(vals) > 0
        if numeric:
            g.update(numstats(vals, numeric_stats))
        if "traces" in stats:
            g["traces"] = len({r.trace for r in grs if r.trace is not None})
        h = q.get("histogram")
        if h is not None and numeric:
            bins = h.get("bins", 10)
            hlo = h["min"] if h.get("min") is not None else min(vals)
            hhi = h["max"] if h.get("max") is not None else max(vals)
            if not hhi >= hlo:
                hhi = hlo
            width = (hhi - hlo) / bins
            counts = [0] * bins
            under = over = 0
            for x in vals:
                if x < hlo:
                    under += 1
                elif x > hhi:
                    over += 1
                else:
                    b = math.floor((x - hlo) / width) if width > 0 else bins - 1
                    if not (0 <= b < bins):
                        b = bins - 1
                    counts[b] += 1
            edges = [hlo + width * i for i in range(bins)] + [hhi]
            g["histogram"] = {"edges": [float(e) for e in edges], "counts": counts,
                              "underflow": under, "overflow": over}
        pcts = q.get("percentiles")
        if pcts and numeric:
            sv = sorted(vals)
            g["percentiles"] = {format(float(p), ".15g"): float(quantile_cont(sv, p))
                                for p in pcts}
        if cats:
            cc = {}
            for c in cats:
                cc[c] = cc.get(c, 0) + 1
            g["categories"] = cc
        if iv:
            width, origin = interval_spec(iv)
            buckets = {}
            for r in grs:
                buckets.setdefault(floordiv(r.ts - origin, width), []).append(r)
            ser = []
            for i in range(first, last + 1):
                br = buckets.get(i, [])
                e = {"t": out_time(i * width + origin), "count": len(br)}
                if numeric:
                    e.update(numstats([r.value for r in br if r.type != "CATEGORICAL"],
                                      numeric_stats))
                ser.append(e)
            g["series"] = ser
        out.append(g)
    return out


def scale_of(rows):
    m = 1.0
    for r in rows:
        if r.value is not None and abs(r.value) > m:
            m = abs(r.value)
    return m


def engine_query(db, q, env=None):
    rc, out, err = run(["query", "--db", db, json.dumps(q)], env=env)
    if rc != 0:
        return None, "exit %d: %s" % (rc, err.strip())
    try:
        return json.loads(out), None
    except ValueError as e:
        return None, "bad JSON (%s): %s" % (e, out[:200])


def compare_query(db, q, store_rows, label, scale, env=None):
    NCHECK["queries"] += 1
    exp = reference(q, store_rows)
    if env is None:
        cover(q, exp)
    act, err = engine_query(db, q, env)
    if err:
        return check(False, "query-error", label=label, query=q, msg="%s: %s -> %s" % (
            label, json.dumps(q), err))
    top = None
    if set(act) != {"as_of", "pending", "groups"}:
        top = "top-level keys %s" % sorted(act)
    elif act["pending"] != 0:
        top = "pending %r" % act["pending"]
    d = top or diff(exp, act["groups"], "groups", scale)
    return check(d is None, "mismatch", label=label, query=q, expected=exp,
                 actual=act.get("groups"), msg="%s: %s: %s" % (label, json.dumps(q), d))


# ------------------------------------------------------------- data set

NUM_NAMES = {
    "faithfulness": 25000, "latency_ms": 12000, "delta": 6000, "toxicity": 5000,
    "hot": 20000, "answer relevance/é": 2000,
}
BOOL_NAMES = {"helpful": 10000, "thumbs": 6000}
CAT_NAMES = {"verdict": 10000}
MIXED = {"mixed": 3000}
LABELS = ["pass", "fail", "partial", "n/a", "Ünïcode ✓", "Pass"]
MODELS = ["gpt-4o", "claude", "llama", "Mistral"]
PVS = ["v1", "v2", "v3", "v10"]
ENVS = ["production", "staging"]
TNAMES = ["chat", "search", "rag"]
FEATURES = ["search", "chat", "summarize"]
REGIONS = ["eu", "us", "apac"]
TAGS = ["a", "b", "c", "d"]


def gen_value(rng, name, o):
    if name in ("faithfulness",):
        o["value"] = round(rng.random(), 2)
    elif name == "latency_ms":
        o["value"] = rng.lognormvariate(5, 1)
    elif name == "delta":
        o["value"] = rng.randint(-50, 50)
    elif name == "toxicity":
        o["value"] = 1000 + round(rng.random(), 6)
    elif name == "hot":
        o["value"] = round(rng.uniform(0, 100), 2)
    elif name == "answer relevance/é":
        o["value"] = rng.choice([0, 0.25, 0.5, 0.75, 1, rng.random()])
    elif name == "helpful":
        o["value"] = rng.random() < 0.7
        if rng.random() < 0.3:
            o["data_type"] = "BOOLEAN"
    elif name == "thumbs":
        if rng.random() < 0.8:
            o["value"] = rng.choice([0, 1])
        else:
            o["value"] = rng.choice([True, False])
        o["data_type"] = "BOOLEAN"
    elif name == "verdict":
        o["value"] = rng.choices(LABELS, [50, 30, 10, 5, 3, 2])[0]
        if rng.random() < 0.3:
            o["data_type"] = "CATEGORICAL"
    elif name == "mixed":
        k = rng.random()
        if k < 0.4:
            o["value"] = round(rng.random(), 3)
        elif k < 0.7:
            o["value"] = rng.random() < 0.5
        else:
            o["value"] = rng.choice(["x", "y"])
    else:
        o["value"] = round(rng.random(), 3)


def gen_ts(rng, name):
    if name == "hot":
        base = T0 + 10 * DAY
        ms = base + rng.randrange(2 * DAY)
    else:
        ms = T0 + rng.randrange(SPAN_DAYS * DAY)
    k = rng.random()
    if k < 0.03:
        ms -= ms % DAY  # midnight
    elif k < 0.05:
        ms -= ms % HOUR
    elif k < 0.06:
        ms = T0 + 7 * DAY * rng.randrange(SPAN_DAYS // 7)  # Monday midnight
    elif k < 0.07:
        ms = ms - ms % DAY - 1  # the last ms of a day
    return ms


def gen_score(rng, name, idx, with_id=True):
    o = {"name": name}
    if with_id:
        o["id"] = "s%06d" % idx
    gen_value(rng, name, o)
    k = rng.random()
    if k < 0.85:
        o["trace_id"] = "t%05d" % rng.randrange(30000)
        if rng.random() < 0.2:
            o["observation_id"] = "o%d" % rng.randrange(100000)
        if rng.random() < 0.1:
            o["session_id"] = "sess%d" % rng.randrange(500)
    elif k < 0.95:
        o["session_id"] = "sess%d" % rng.randrange(500)
    else:
        o["dataset_run_id"] = "run%d" % rng.randrange(20)
    ms = gen_ts(rng, name)
    tv, ms = fmt_time(rng, ms)
    o["timestamp"] = tv
    o["_ts"] = ms
    if rng.random() < 0.8:
        o["source"] = rng.choice(SOURCES)
    if rng.random() < 0.6:
        o["environment"] = rng.choice(ENVS)
    if rng.random() < 0.8:
        o["model"] = rng.choice(MODELS)
    if rng.random() < 0.7:
        o["prompt_version"] = rng.choice(PVS)
    if rng.random() < 0.5:
        o["trace_name"] = rng.choice(TNAMES)
    if rng.random() < 0.6:
        o["user_id"] = "u%02d" % rng.randrange(40)
    elif rng.random() < 0.5:
        o["user_id"] = "hc%d" % rng.randrange(6000)  # > 4096 distinct, > 64 per chunk
    if o.get("source") == "ANNOTATION" and rng.random() < 0.8:
        o["author"] = rng.choice(["alice", "bob", "Carol"])
    if rng.random() < 0.1:
        o["config_id"] = "cfg%d" % rng.randrange(3)
    if rng.random() < 0.5:
        o["tags"] = rng.sample(TAGS, rng.randint(0, 3))
    if rng.random() < 0.6:
        p = {}
        if rng.random() < 0.8:
            p["feature"] = rng.choice(FEATURES)
        if rng.random() < 0.5:
            p["region"] = rng.choice(REGIONS)
        o["properties"] = p
    if rng.random() < 0.05:
        o["comment"] = "looks fine \"quoted\" \\ ü"
    if rng.random() < 0.05:
        o["metadata"] = {"k": [1, 2, {"x": None}], "s": "v"}
    return o


def line_of(o):
    return json.dumps({k: v for k, v in o.items() if not k.startswith("_")},
                      ensure_ascii=bool(o.get("_ascii")))


def all_names():
    return (list(NUM_NAMES) + list(BOOL_NAMES) + list(CAT_NAMES) + list(MIXED))


def gen_file1(rng, n_scale):
    lines = []
    idx = 0
    plan = []
    for d in (NUM_NAMES, BOOL_NAMES, CAT_NAMES, MIXED):
        for name, n in d.items():
            plan += [name] * max(1, int(n * n_scale))
    rng.shuffle(plan)
    ids = []
    for name in plan:
        o = gen_score(rng, name, idx, with_id=rng.random() > 0.03)
        idx += 1
        if rng.random() < 0.2:
            o["_ascii"] = True
        lines.append(o)
        if "id" in o:
            ids.append(o["id"])
        # replacements inside the same file: right away, or far apart
        r = rng.random()
        if r < 0.01 and ids:
            j = ids[-1]
        elif r < 0.02 and ids:
            j = rng.choice(ids)
        else:
            j = None
        if j is not None:
            nm = rng.choice(all_names()) if rng.random() < 0.3 else name
            o2 = gen_score(rng, nm, 0)
            o2["id"] = j
            lines.append(o2)
    # fixed small names: a single score and two equal scores
    o = gen_score(rng, "single", 0)
    o["id"], o["value"] = "single-1", 0.37
    o.pop("data_type", None)
    lines.append(o)
    for i in range(2):
        o = gen_score(rng, "pair", 0)
        o["id"], o["value"] = "pair-%d" % i, 2.5
        o.pop("data_type", None)
        lines.append(o)
    # a 200-byte multi-byte name
    o = gen_score(rng, "é" * 100, 0)
    o["id"], o["value"] = "longname", 0.5
    o.pop("data_type", None)
    lines.append(o)
    return lines, idx


def gen_replacements(rng, store, n, idx0, new_frac=0.25):
    """Replacements of stored ids (value/name/timestamp/type/dims changes) plus new rows."""
    ids = [i for i in store.by_id]
    lines = []
    used = []
    idx = idx0
    for _ in range(n):
        if rng.random() < new_frac:
            nm = rng.choice(all_names())
            lines.append(gen_score(rng, nm, idx, with_id=rng.random() > 0.05))
            idx += 1
            continue
        if used and rng.random() < 0.1:
            j = rng.choice(used)  # replaced twice in this file
        else:
            j = rng.choice(ids)
        used.append(j)
        old = store.by_id.get(j)
        k = rng.random()
        nm = old.name if old is not None else "faithfulness"
        if k < 0.3:
            nm = rng.choice(all_names())  # name (and maybe type) changes
        o = gen_score(rng, nm, 0)
        o["id"] = j
        if k > 0.3 and k < 0.5 and old is not None and old.type != "CATEGORICAL" and \
                nm not in ("mixed",):
            # only the value changes; keep its timestamp and dims
            o["_ts"] = old.ts
            o["timestamp"] = old.ts
        lines.append(o)
    return lines, idx


MALFORMED = [
    # (raw line or object, substring the error must contain; None = any message)
    ({"value": 0.5, "trace_id": "t1"}, "name"),
    ({"name": "", "value": 0.5, "trace_id": "t1"}, "name"),
    ({"name": "x" * 201, "value": 0.5, "trace_id": "t1"}, "name"),
    ({"name": 5, "value": 0.5, "trace_id": "t1"}, "name"),
    ({"name": "faithfulness", "trace_id": "t1"}, "value"),
    ({"name": "faithfulness", "value": None, "trace_id": "t1"}, "value"),
    ({"name": "faithfulness", "value": [1], "trace_id": "t1"}, "value"),
    ({"name": "faithfulness", "value": {"a": 1}, "trace_id": "t1"}, "value"),
    ('{"name":"faithfulness","value":1e400,"trace_id":"t1"}', "value"),
    ('{"name":"faithfulness","value":-1e999,"trace_id":"t1"}', "value"),
    ({"name": "helpful", "value": 2, "data_type": "BOOLEAN", "trace_id": "t1"}, "value"),
    ({"name": "helpful", "value": 0.5, "data_type": "BOOLEAN", "trace_id": "t1"}, "value"),
    ({"name": "helpful", "value": "true", "data_type": "BOOLEAN", "trace_id": "t1"}, "value"),
    ({"name": "verdict", "value": 1, "data_type": "CATEGORICAL", "trace_id": "t1"}, "value"),
    ({"name": "verdict", "value": True, "data_type": "CATEGORICAL", "trace_id": "t1"}, "value"),
    ({"name": "faithfulness", "value": True, "data_type": "NUMERIC", "trace_id": "t1"}, "value"),
    ({"name": "faithfulness", "value": "0.5", "data_type": "NUMERIC", "trace_id": "t1"}, "value"),
    ({"name": "faithfulness", "value": 0.5, "data_type": "FLOAT", "trace_id": "t1"}, "data_type"),
    ({"name": "faithfulness", "value": 0.5, "data_type": "numeric", "trace_id": "t1"}, "data_type"),
    ({"name": "faithfulness", "value": 0.5, "data_type": 1, "trace_id": "t1"}, "data_type"),
    ({"name": "faithfulness", "value": 0.5}, "trace_id"),
    ({"name": "faithfulness", "value": 0.5, "observation_id": "o1", "session_id": "s1"},
     "observation_id"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t" * 201}, "trace_id"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": 5}, "trace_id"),
    ({"name": "faithfulness", "value": 0.5, "session_id": ["s"]}, "session_id"),
    ({"name": "faithfulness", "value": 0.5, "dataset_run_id": {}}, "dataset_run_id"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "observation_id": 3},
     "observation_id"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "id": "i" * 201}, "id"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "id": 7}, "id"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "timestamp": "2026-13-01T00:00:00Z"},
     "timestamp"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "timestamp": "2026-02-30T00:00:00Z"},
     "timestamp"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "timestamp": "yesterday"},
     "timestamp"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "timestamp": "2026-01-05T10:00:00"},
     "timestamp"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "timestamp": "2026-01-05T25:00:00Z"},
     "timestamp"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "timestamp": 1767571200000.5},
     "timestamp"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "timestamp": True}, "timestamp"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "timestamp": "2026-01-05T10:00:00+2"},
     "timestamp"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "source": "USER"}, "source"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "source": "api"}, "source"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "source": 1}, "source"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "environment": 5}, "environment"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "model": ["gpt"]}, "model"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "prompt_version": 2},
     "prompt_version"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "trace_name": {}}, "trace_name"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "user_id": 9}, "user_id"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "author": False}, "author"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "config_id": 1}, "config_id"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "tags": "a"}, "tags"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "tags": ["a", 1]}, "tags"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "properties": {"feature": 1}},
     "properties"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "properties": ["a"]}, "properties"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "comment": 5}, "comment"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "metadata": "x"}, "metadata"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "metadata": [1]}, "metadata"),
    ({"name": "faithfulness", "value": 0.5, "trace_id": "t1", "foo": 1}, "foo"),
    ({"Name": "faithfulness", "value": 0.5, "trace_id": "t1"}, "ame"),
    ('not json', None),
    ('[1,2]', None),
    ('"a string"', None),
    ('{"name":"faithfulness","value":0.5,"trace_id":"t1"', None),
    ('{"name":"faithfulness","value":NaN,"trace_id":"t1"}', None),
    ('{"name":"faithfulness","value":Infinity,"trace_id":"t1"}', None),
]


def malformed_lines(existing_ids):
    out = []
    for raw, field in MALFORMED:
        out.append((raw if isinstance(raw, str) else json.dumps(raw), field))
    # bad rows that reuse existing ids: must not replace (or delete) anything
    for j in existing_ids:
        out.append((json.dumps({"id": j, "name": "faithfulness", "value": "high",
                                "data_type": "NUMERIC", "trace_id": "t1"}), "value"))
        out.append((json.dumps({"id": j, "name": "faithfulness", "value": 0.1,
                                "timestamp": "never", "trace_id": "t1"}), "timestamp"))
        out.append((json.dumps({"id": j, "name": "faithfulness", "value": 0.1}), "trace_id"))
    return out


# ------------------------------------------------------------ random queries

def rand_time(rng, snap=None):
    ms = T0 - 2 * DAY + rng.randrange((SPAN_DAYS + 4) * DAY)
    k = rng.random() if snap is None else snap
    if k < 0.15:
        ms -= ms % DAY
    elif k < 0.25:
        ms -= ms % HOUR
    style = rng.choice(["epoch", "z_ms", "off_ms", "z_s", "off_s"])
    return fmt_time(rng, ms, style)


def rand_query(rng, rows_sample):
    q = {}
    k = rng.random()
    if k < 0.45:
        q["name"] = rng.choice(all_names() + ["single", "pair", "nosuchname"])
    elif k < 0.7:
        q["names"] = rng.sample(all_names() + ["nosuchname"], rng.randint(1, 3))
    k = rng.random()
    span = None
    if k < 0.25:
        pass
    else:
        a, am = rand_time(rng)
        b, bm = rand_time(rng)
        if am > bm:
            a, am, b, bm = b, bm, a, am
        if rng.random() < 0.4:  # a short window
            bm2 = am + rng.randrange(1, 5 * DAY)
            b, bm = fmt_time(rng, bm2, rng.choice(["epoch", "z_ms", "off_ms"]))
            if bm < am:
                b, bm = a, am
        if k < 0.45:
            q["from"] = a
            span = (am, None)
        elif k < 0.6:
            q["to"] = b
            span = (None, bm)
        else:
            q["from"], q["to"] = a, b
            span = (am, bm)
    w = {}
    if rng.random() < 0.25:
        ref = rng.choice(rows_sample)
        v = ref.value if ref.value is not None else 0.5
        ops = rng.sample(["gt", "gte", "lt", "lte", "eq"], rng.randint(1, 2))
        vf = {}
        for op in ops:
            if op == "eq":
                vf[op] = v
            elif op in ("gt", "gte"):
                vf[op] = v if rng.random() < 0.5 else round(v - abs(v) * rng.random(), 2)
            else:
                vf[op] = v if rng.random() < 0.5 else round(v + abs(v) * rng.random() + 0.1, 2)
        w["value"] = vf
    if rng.random() < 0.15:
        w["source"] = rng.sample(SOURCES, rng.randint(1, 2))
    if rng.random() < 0.12:
        w["data_type"] = rng.sample(TYPES, rng.randint(1, 2))
    if rng.random() < 0.2:
        w["model"] = rng.sample(MODELS + ["nosuch"], rng.randint(1, 2))
    if rng.random() < 0.1:
        w["prompt_version"] = rng.sample(PVS, rng.randint(1, 2))
    if rng.random() < 0.1:
        w["environment"] = rng.sample(ENVS + ["default"], rng.randint(1, 2))
    if rng.random() < 0.05:
        w["trace_name"] = rng.sample(TNAMES, 1)
    if rng.random() < 0.05:
        w["user_id"] = ["u%02d" % rng.randrange(40) for _ in range(3)]
    if rng.random() < 0.05:
        w["author"] = rng.sample(["alice", "bob", "Carol"], 2)
    if rng.random() < 0.12:
        w["tags"] = rng.sample(TAGS + ["zz"] * (rng.random() < 0.1), rng.randint(1, 2))
    if rng.random() < 0.12:
        p = {}
        if rng.random() < 0.7:
            p["feature"] = rng.sample(FEATURES, rng.randint(1, 2))
        if rng.random() < 0.5:
            p["region"] = rng.sample(REGIONS, rng.randint(1, 2))
        w["properties"] = p
    if w:
        q["where"] = w
    if rng.random() < 0.6:
        choices = ["name", "model", "prompt_version", "environment", "source", "data_type",
                   "trace_name", "user_id", "author", "properties.feature",
                   "properties.region", "properties.nokey"]
        q["group_by"] = rng.sample(choices, rng.choices([1, 2, 3, 4], [12, 6, 2, 1])[0])
    if rng.random() < 0.5:
        st = ["count", "avg", "min", "max", "sum", "stddev", "traces"]
        q["stats"] = rng.sample(st, rng.randint(1, 7))
    ngroups_hint = 1 if "group_by" not in q else 10
    if rng.random() < 0.3:
        lo_ms = span[0] if span and span[0] is not None else T0
        hi_ms = span[1] if span and span[1] is not None else T0 + SPAN_DAYS * DAY
        dur = max(1, hi_ms - lo_ms)
        opts = ["1d", "1w", "2d", "7d", "12h", "1h", "30m", "3h", "2w", "15s"]
        rng.shuffle(opts)
        for o in opts:
            wms, _ = interval_spec(o)
            if dur / wms <= (2000 / ngroups_hint):
                q["interval"] = o
                break
    if rng.random() < 0.3:
        h = {}
        if rng.random() < 0.8:
            h["bins"] = rng.choice([1, 2, 3, 5, 7, 10, 20, 100])
        k = rng.random()
        if k < 0.5:
            lo = rng.choice([0, 0.1, -10, 0.25, 1000, 1000.5])
            h["min"] = lo
            h["max"] = lo + rng.choice([1, 0.5, 0.3, 100, 0.7, 50])
        elif k < 0.6:
            h["min"] = rng.choice([0, 0.5])
        elif k < 0.65:
            h["max"] = rng.choice([1, 0.5])
        q["histogram"] = h
    if rng.random() < 0.3:
        ps = [0, 1, 5, 10, 12.5, 25, 33.3, 50, 75, 90, 95, 99, 99.9, 100]
        q["percentiles"] = rng.sample(ps, rng.randint(1, 4 if rng.random() < 0.7 else 12))
    return q


# ------------------------------------------------------------- edge cases

def edge_store_lines():
    """A small hand-made store whose answers are computed by hand in edge_checks()."""
    L = []

    def add(**kw):
        o = {"trace_id": kw.pop("trace_id", "et%d" % len(L))}
        o.update(kw)
        L.append(o)
    D = T0 + 2 * DAY  # Wednesday 2026-01-07
    # boundaries: scores exactly at from/to (odd ms)
    add(id="b1", name="bound", value=1, timestamp=D + 12345)          # == from
    add(id="b2", name="bound", value=2, timestamp=D + 12344)          # from - 1
    add(id="b3", name="bound", value=4, timestamp=D + 3 * HOUR + 7)   # == to (excluded)
    add(id="b4", name="bound", value=8, timestamp=D + 3 * HOUR + 6)   # to - 1
    add(id="b5", name="bound", value=16, timestamp=iso(D + 2 * HOUR, 3, 120))  # offset form
    # histogram edges over [0,1] with 10 bins, and outside values
    for i, v in enumerate([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, -0.01, 1.01,
                           0.05, 0.95, 0.3, 0.6, 0.7]):
        add(id="h%d" % i, name="hist", value=v, timestamp=D + i)
    # single and pair
    add(id="one", name="one", value=0.42, timestamp=D)
    add(id="two1", name="two", value=3.0, timestamp=D)
    add(id="two2", name="two", value=3.0, timestamp=D + 1, trace_id="et-same")
    add(id="two3", name="two3", value=1.0, timestamp=D, trace_id="et-same")
    add(id="two4", name="two3", value=2.0, timestamp=D, trace_id="et-same")
    # sorting: nulls first, byte order
    for i, m in enumerate([None, "b", "B", "a", "ab", "ä", "a b", "A"]):
        o = dict(id="srt%d" % i, name="sort", value=i, timestamp=D)
        if m is not None:
            o["model"] = m
        add(**o)
    # weeks: Sunday 23:59:59.999 and Monday 00:00:00.000
    SUN = T0 + 6 * DAY + DAY - 1
    add(id="w1", name="week", value=1, timestamp=SUN)
    add(id="w2", name="week", value=3, timestamp=SUN + 1)
    add(id="w3", name="week", value=5, timestamp=SUN + 1 + 15 * DAY)
    # booleans in every form
    add(id="bo1", name="bool", value=True, timestamp=D)
    add(id="bo2", name="bool", value=False, timestamp=D)
    add(id="bo3", name="bool", value=1, data_type="BOOLEAN", timestamp=D)
    add(id="bo4", name="bool", value=0, data_type="BOOLEAN", timestamp=D)
    add(id="bo5", name="bool", value=True, data_type="BOOLEAN", timestamp=D)
    # categorical
    for i, c in enumerate(["pass", "pass", "fail", "pass", "ünï"]):
        add(id="c%d" % i, name="cat", value=c, timestamp=D + i * DAY,
            data_type="CATEGORICAL" if i % 2 else None)
    # timestamp forms, all the same instant 2026-01-07T10:00:00.000Z
    inst = D + 10 * HOUR
    for i, tv in enumerate([inst, iso(inst, 3), iso(inst, 0), iso(inst, 3, 120),
                            iso(inst, 0, -330), iso(inst, 1), iso(inst, 3, 0)]):
        add(id="tf%d" % i, name="tforms", value=i, timestamp=tv)
    # replacement: value, name, timestamp and type change
    add(id="r1", name="repl", value=10, timestamp=D)
    add(id="r2", name="repl", value=20, timestamp=D)
    add(id="r3", name="repl", value=30, timestamp=D)
    add(id="r1", name="repl", value=11, timestamp=D)               # value
    add(id="r2", name="repl_other", value=21, timestamp=D)         # name
    add(id="r3", name="repl", value=31, timestamp=D + 9 * DAY)     # timestamp
    # times far from now: before 1970, leap day, year 9999
    for i, tv in enumerate([-1, 0, -DAY, -3 * DAY - 1, "1969-12-29T00:00:00Z",
                            "1900-03-01T00:00:00Z", "2024-02-29T12:00:00+14:00",
                            "9999-12-31T23:59:59.999Z", "1969-12-31T23:00:00-01:00",
                            "1969-12-31T23:59:59.999Z", -7 * DAY + 1]):
        add(id="anc%d" % i, name="ancient", value=i, timestamp=tv,
            model=["m1", "m2", None][i % 3])
    # empty strings are values, not nulls; a property key with a dot
    add(id="e1", name="empties", value=1, timestamp=D, model="", properties={"feature": ""},
        tags=[""])
    add(id="e2", name="empties", value=2, timestamp=D, properties={"a.b": "x"})
    add(id="e3", name="empties", value=4, timestamp=D, model="m", properties={"feature": "f"})
    # a large mean against a small spread (|mean| / stddev ~ 1e10), over two day-buckets
    add(id="off1", name="offset", value=1000000000.9, timestamp=0)
    add(id="off2", name="offset", value=1000000000.7, timestamp=1)
    add(id="off3", name="offset", value=1000000000.7, timestamp=DAY)
    for i, v in enumerate([100000000.1, 100000000.2, 100000000.3, 100000000.4]):
        add(id="off1e8-%d" % i, name="offset8", value=v, timestamp=i * DAY // 2)
    for o in L:
        if o.get("model", 0) is None:
            o.pop("model")
        if o.get("data_type") is None:
            o.pop("data_type", None)
    return L


def edge_checks(db, rows):
    D = T0 + 2 * DAY
    Q = []
    # from inclusive, to exclusive, odd ms, in several forms
    Q.append({"name": "bound", "from": D + 12345, "to": D + 3 * HOUR + 7,
              "stats": ["count", "sum", "min", "max"]})
    Q.append({"name": "bound", "from": iso(D + 12345), "to": iso(D + 3 * HOUR + 7, 3, 120),
              "stats": ["count", "sum"]})
    Q.append({"name": "bound", "from": iso(D + 12345, 3, -330), "to": D + 3 * HOUR + 7,
              "stats": ["count", "sum"], "interval": "1h"})
    Q.append({"name": "bound", "from": D + 12345, "to": D + 12345})  # empty window
    Q.append({"name": "bound", "from": D + 12345, "to": D + 12346, "stats": ["sum"]})
    Q.append({"name": "bound", "interval": "1h", "stats": ["count", "sum", "stddev"]})
    # histogram edges
    Q.append({"name": "hist", "histogram": {"bins": 10, "min": 0, "max": 1}})
    Q.append({"name": "hist", "histogram": {"bins": 4, "min": 0, "max": 1}})
    Q.append({"name": "hist", "histogram": {"bins": 3, "min": 0, "max": 0.9}})
    Q.append({"name": "hist", "histogram": {"bins": 5}})
    Q.append({"name": "hist", "histogram": {"bins": 1}})
    Q.append({"name": "hist", "histogram": {"bins": 10, "min": 0.1, "max": 0.7}})
    Q.append({"name": "hist", "percentiles": [0, 10, 25, 50, 75, 90, 100, 33.3, 66.7]})
    Q.append({"name": "hist", "where": {"value": {"gte": 0.3, "lt": 0.7}},
              "stats": ["count", "sum"]})
    Q.append({"name": "hist", "where": {"value": {"gt": 0.3, "lte": 0.7}},
              "stats": ["count", "sum"]})
    Q.append({"name": "hist", "where": {"value": {"eq": 0.3}}, "stats": ["count"]})
    # single value / pairs: stddev null for one value, 0 for two equal ones
    for n in ("one", "two", "two3"):
        Q.append({"name": n, "stats": ["count", "avg", "min", "max", "sum", "stddev", "traces"],
                  "histogram": {"bins": 4}, "percentiles": [0, 50, 100, 37]})
    Q.append({"names": ["one", "two", "two3"], "group_by": ["name"],
              "stats": ["stddev", "traces"], "interval": "1d"})
    Q.append({"names": ["one", "two", "two3"], "stats": ["stddev", "traces", "count"]})
    # sorting with nulls first
    Q.append({"name": "sort", "group_by": ["model"], "stats": ["count", "sum"]})
    Q.append({"names": ["sort", "one"], "group_by": ["model", "name"], "stats": ["count"]})
    Q.append({"group_by": ["properties.none", "name"], "stats": ["count"]})
    # weeks start on Monday, empty weeks present
    Q.append({"name": "week", "interval": "1w", "stats": ["count", "sum", "avg"]})
    Q.append({"name": "week", "interval": "1d", "stats": ["count", "sum"]})
    Q.append({"name": "week", "interval": "1w", "from": T0 + 2 * DAY, "to": T0 + 30 * DAY})
    # booleans
    Q.append({"name": "bool", "stats": ["count", "avg", "sum"]})
    Q.append({"name": "bool", "group_by": ["data_type"]})
    # categorical
    Q.append({"name": "cat", "stats": ["count", "avg", "traces"], "interval": "1d",
              "histogram": {"bins": 2}, "percentiles": [50]})
    Q.append({"names": ["cat", "bool"], "group_by": ["name"]})
    Q.append({"names": ["cat", "bool"]})
    Q.append({"name": "cat", "where": {"value": {"gte": 0}}})
    # timestamp forms all land on one instant
    inst = D + 10 * HOUR
    Q.append({"name": "tforms", "from": inst, "to": inst + 1, "stats": ["count", "sum"]})
    # replacements
    Q.append({"names": ["repl", "repl_other"], "group_by": ["name"],
              "stats": ["count", "sum"], "interval": "1d"})
    # times before 1970 and far ahead
    Q.append({"name": "ancient", "from": -DAY, "to": 1, "interval": "1d",
              "stats": ["count", "sum"]})
    Q.append({"name": "ancient", "from": "1969-12-20T00:00:00Z", "to": "1970-01-10T00:00:00Z",
              "interval": "1w", "stats": ["count", "sum"]})
    Q.append({"name": "ancient", "from": -DAY, "to": 2, "interval": "1h",
              "stats": ["count", "sum"]})
    Q.append({"name": "ancient", "to": 0, "stats": ["count", "sum"], "group_by": ["model"]})
    Q.append({"name": "ancient", "from": 0, "stats": ["count", "sum", "min", "max"]})
    Q.append({"name": "ancient", "from": "9999-12-31T00:00:00Z", "interval": "1h",
              "stats": ["count", "sum"]})
    Q.append({"name": "ancient", "from": "2024-02-28T00:00:00Z", "to": "2024-03-02T00:00:00Z",
              "interval": "1d", "stats": ["count", "sum"]})
    Q.append({"name": "ancient", "stats": ["count", "sum"], "percentiles": [50]})
    # empty strings and dotted property keys
    Q.append({"name": "empties", "group_by": ["model"], "stats": ["count", "sum"]})
    Q.append({"name": "empties", "group_by": ["properties.feature"], "stats": ["count", "sum"]})
    Q.append({"name": "empties", "group_by": ["properties.a.b"], "stats": ["count", "sum"]})
    Q.append({"name": "empties", "where": {"model": [""]}, "stats": ["count", "sum"]})
    Q.append({"name": "empties", "where": {"tags": [""]}, "stats": ["count", "sum"]})
    Q.append({"name": "empties", "where": {"properties": {"feature": [""]}},
              "stats": ["count", "sum"]})
    Q.append({"name": "empties", "where": {"properties": {"a.b": ["x"]}},
              "stats": ["count", "sum"]})
    Q.append({"names": ["empties", "empties", "one"], "stats": ["count", "sum"]})
    # stddev with a large mean: header, kernel and row paths
    for n in ("offset", "offset8"):
        Q.append({"name": n, "stats": ["count", "avg", "stddev"]})
        Q.append({"name": n, "stats": ["count", "avg", "stddev"], "where": {"source": ["API"]}})
        Q.append({"name": n, "stats": ["count", "stddev"], "from": 0, "to": 10 * DAY})
    # empty results
    Q.append({"name": "nosuch"})
    Q.append({"name": "bound", "where": {"model": ["nosuch"]}})
    Q.append({"name": "bound", "from": T0 + 1000 * DAY})
    Q.append({"name": "bound", "group_by": ["model"], "where": {"value": {"gt": 100}}})
    sc = scale_of(rows)
    for q in Q:
        compare_query(db, q, rows, "edge", sc)
    # hand-computed expectations, independent of the reference code
    hand = [
        ({"name": "bound", "from": D + 12345, "to": D + 3 * HOUR + 7, "stats": ["count", "sum"]},
         [{"count": 3, "sum": 25.0}]),
        ({"name": "hist", "histogram": {"bins": 10, "min": 0, "max": 1}, "stats": ["count"]},
         None),
        ({"name": "one", "stats": ["count", "stddev"]}, [{"count": 1, "stddev": None}]),
        ({"name": "two", "stats": ["count", "stddev", "traces"]},
         [{"count": 2, "stddev": 0.0, "traces": 2}]),
        ({"name": "bool", "stats": ["count", "avg"]}, [{"count": 5, "avg": 0.6}]),
        ({"name": "cat", "stats": ["count", "avg"]},
         [{"count": 5, "categories": {"pass": 3, "fail": 1, "ünï": 1}}]),
        ({"name": "tforms", "from": D + 10 * HOUR, "to": D + 10 * HOUR + 1, "stats": ["count"]},
         [{"count": 7}]),
        ({"name": "week", "interval": "1w", "stats": ["count"]},
         [{"count": 3, "series": [
             {"t": "2026-01-05T00:00:00.000Z", "count": 1},
             {"t": "2026-01-12T00:00:00.000Z", "count": 1},
             {"t": "2026-01-19T00:00:00.000Z", "count": 0},
             {"t": "2026-01-26T00:00:00.000Z", "count": 1}]}]),
        ({"name": "sort", "group_by": ["model"], "stats": ["count"]},
         [{"key": {"model": m}, "count": 1} for m in
          [None, "A", "B", "a", "a b", "ab", "b", "ä"]]),
        ({"names": ["repl", "repl_other"], "group_by": ["name"], "stats": ["count", "sum"]},
         [{"key": {"name": "repl"}, "count": 2, "sum": 42.0},
          {"key": {"name": "repl_other"}, "count": 1, "sum": 21.0}]),
    ]
    for q, exp in hand:
        if exp is None:
            continue
        act, err = engine_query(db, q)
        NCHECK["queries"] += 1
        d = err or diff(exp, act["groups"], "groups")
        check(d is None, "mismatch", label="edge-hand", query=q, expected=exp,
              actual=act and act.get("groups"), msg="edge-hand: %s: %s" % (json.dumps(q), d))
    # histogram on [0,1], 10 bins, by hand: v in bin floor(v/0.1), 1.0 in the last bin
    q = {"name": "hist", "histogram": {"bins": 10, "min": 0, "max": 1}, "stats": ["count"]}
    act, err = engine_query(db, q)
    vals = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.05, 0.95, 0.3, 0.6, 0.7]
    counts = [0] * 10
    for v in vals:
        counts[min(9, math.floor(v / 0.1))] += 1
    exp = [{"count": 18, "histogram": {"edges": [0.1 * i for i in range(10)] + [1.0],
                                       "counts": counts, "underflow": 1, "overflow": 1}}]
    NCHECK["queries"] += 1
    d = err or diff(exp, act["groups"], "groups")
    check(d is None, "mismatch", label="edge-hand-hist", query=q, expected=exp,
          actual=act and act.get("groups"), msg="edge-hand-hist: %s" % d)


# ------------------------------------------------------- contract probes

def probes():
    """Rows the Score object table allows (no byte limit is given for these fields,
    or the limit is met): each must be accepted. And behaviour API.md leaves open,
    printed as notes."""
    pdb = os.path.join(WORK, "probes")
    L = "x" * 201
    allowed = [
        ("CATEGORICAL label of 300 bytes", {"value": "label " * 50}),
        ("model of 201 bytes", {"model": L}),
        ("environment of 201 bytes", {"environment": L}),
        ("prompt_version of 201 bytes", {"prompt_version": L}),
        ("user_id of 201 bytes", {"user_id": L}),
        ("config_id of 201 bytes", {"config_id": L}),
        ("tag of 201 bytes", {"tags": [L]}),
        ("property value of 201 bytes", {"properties": {"k": L}}),
        ("trace_id of exactly 200 bytes", {"trace_id": "t" * 200}),
        ("id of exactly 200 bytes", {"id": "i" * 200}),
        ("name of exactly 200 bytes", {"name": "n" * 200}),
        ("BOOLEAN 1.0 with data_type", {"value": 1.0, "data_type": "BOOLEAN"}),
        ("timestamp null (= absent)", {"timestamp": None}),
    ]
    for what, extra in allowed:
        o = {"name": "probe", "value": 0.5, "trace_id": "t", "timestamp": T0}
        o.update(extra)
        rc, summ = ingest(pdb, [json.dumps(o)])
        check(rc == 0 and summ.get("accepted") == 1, "contract-strict",
              msg="%s is valid per API.md's Score table but was rejected: %s" % (
                  what, (summ.get("errors") or [{}])[0].get("error")))
    notes = []
    for what, extra in [("empty id", {"id": ""}), ("empty trace_id with a session_id",
                                                    {"trace_id": "", "session_id": "s"}),
                        ("empty CATEGORICAL label", {"value": ""}),
                        ("empty model", {"model": ""}),
                        ("timestamp with microseconds .123999Z",
                         {"timestamp": "2026-01-05T00:00:00.123999Z"}),
                        ("timestamp without seconds", {"timestamp": "2026-01-05T10:00Z"}),
                        ("bare date timestamp", {"timestamp": "2026-01-05"}),
                        ("leap second", {"timestamp": "2026-12-31T23:59:60Z"}),
                        ("epoch ms as a string", {"timestamp": "1767571200000"})]:
        o = {"name": "probe2", "value": 0.5, "trace_id": "t", "timestamp": T0}
        o.update(extra)
        rc, summ = ingest(pdb, [json.dumps(o)])
        res = "accepted" if rc == 0 else "rejected: %s" % (summ.get("errors") or [{}])[0].get(
            "error")
        notes.append("%s -> %s" % (what, res))
    for what, q in [("to before from", {"from": T0 + 1, "to": T0}),
                    ("empty where.model list", {"where": {"model": []}}),
                    ("stats without count", {"stats": ["avg"]}),
                    ("histogram min above the group max", {"name": "probe",
                                                           "histogram": {"bins": 2, "min": 5}}),
                    ("interval 1m over a year", {"from": T0, "to": T0 + 365 * DAY,
                                                 "interval": "1m"}),
                    ("5 group_by keys", {"group_by": ["name", "model", "source", "data_type",
                                                      "environment"]}),
                    ("interval 7d (epoch-aligned) vs 1w (Monday)",
                     {"name": "probe", "interval": "7d", "stats": ["count"]})]:
        act, err = engine_query(pdb, q)
        notes.append("%s -> %s" % (what, err or json.dumps(act["groups"])[:200]))
    print("notes (API.md silent):")
    for n in notes:
        print("  " + n)


# -------------------------------------------------------------------- main

def ingest(db, lines, stdin=False):
    text = "".join(l + "\n" for l in lines)
    if stdin:
        rc, out, err = run(["ingest", "--db", db, "-"], stdin=text)
    else:
        path = os.path.join(WORK, "in-%d.ndjson" % int(time.time() * 1e6))
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = run(["ingest", "--db", db, path])
    try:
        summary = json.loads(out)
    except ValueError:
        summary = {"raw": out, "stderr": err}
    return rc, summary


def snapshot(db):
    qs = [{"group_by": ["name", "data_type"],
           "stats": ["count", "avg", "min", "max", "sum", "stddev", "traces"]},
          {"group_by": ["model", "source", "environment"], "stats": ["count", "sum"]},
          {"interval": "1d", "stats": ["count", "sum"]},
          {"group_by": ["properties.feature"], "where": {"tags": ["a"]},
           "percentiles": [50], "histogram": {"bins": 5}}]
    out = []
    for q in qs:
        a, err = engine_query(db, q)
        out.append(err or a["groups"])
    rc, names, _ = run(["names", "--db", db])
    out.append(names)
    return out


def check_names(db, rows):
    rc, out, err = run(["names", "--db", db])
    if not check(rc == 0, "names", msg="names exit %d %s" % (rc, err)):
        return
    got = {n["name"]: n for n in json.loads(out)}
    exp = {}
    for r in rows:
        e = exp.setdefault(r.name, {"count": 0, "first": r.ts, "last": r.ts, "types": set()})
        e["count"] += 1
        e["first"] = min(e["first"], r.ts)
        e["last"] = max(e["last"], r.ts)
        e["types"].add(r.type)
    check(set(got) == set(exp), "names", msg="names differ: missing %s extra %s" % (
        sorted(set(exp) - set(got)), sorted(set(got) - set(exp))))
    for n, e in exp.items():
        g = got.get(n)
        if not g:
            continue
        ok = (g["count"] == e["count"] and g["first"] == out_time(e["first"]) and
              g["last"] == out_time(e["last"]) and
              (len(e["types"]) > 1 or g["data_type"] in e["types"]))
        check(ok, "names", msg="names %r: expected count %d first %s last %s types %s, got %r" % (
            n, e["count"], out_time(e["first"]), out_time(e["last"]), sorted(e["types"]), g))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=20260105)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the ~100k rows")
    ap.add_argument("--kernels", action="store_true",
                    help="also rerun every third query under SDB_KERNELS=scalar and avx2")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    global WORK
    own_work = WORK is None
    if own_work:
        import tempfile
        WORK = tempfile.mkdtemp(prefix="scoredb-reference-")
    elif os.path.exists(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK, exist_ok=True)
    # a private copy, so that a rebuild of the repo's binary mid-run does not break it
    global BIN
    for _ in range(30):
        try:
            shutil.copy2(BIN, os.path.join(WORK, "scoredb"))
            break
        except OSError:
            time.sleep(2)
    print("binary: %s (copied to %s/scoredb), seed %d" % (BIN, WORK, a.seed))
    BIN = os.path.join(WORK, "scoredb")

    # ---- edge-case store
    edb = os.path.join(WORK, "edge")
    elines = edge_store_lines()
    est = Store()
    for o in elines:
        o = dict(o)
        if "timestamp" in o:
            o["_ts"] = parse_qtime(o["timestamp"])
        est.put(o)
    rc, summ = ingest(edb, [json.dumps(o) for o in elines])
    check(rc == 0 and summ.get("accepted") == len(elines), "ingest",
          msg="edge ingest rc %d %r" % (rc, summ))
    edge_checks(edb, est.rows())

    # ---- several files in one ingest command: later files replace earlier ones
    mdb = os.path.join(WORK, "multi")
    fa = [{"id": "m1", "name": "multi", "value": 1, "trace_id": "a", "timestamp": T0},
          {"id": "m2", "name": "multi", "value": 2, "trace_id": "a", "timestamp": T0},
          {"id": "m3", "name": "multi", "value": "lbl", "trace_id": "b", "timestamp": T0}]
    fb = [{"id": "m1", "name": "multi", "value": 10, "trace_id": "a", "timestamp": T0 + DAY},
          {"id": "m3", "name": "multi", "value": 0.5, "trace_id": "c", "timestamp": T0},
          {"id": "m1", "name": "multi", "value": 100, "trace_id": "d", "timestamp": T0 + 2 * DAY},
          {"id": "m4", "name": "multi", "value": True, "trace_id": "a", "timestamp": T0}]
    paths = []
    for k, lines in (("a", fa), ("b", fb)):
        pth = os.path.join(WORK, "multi-%s.ndjson" % k)
        with open(pth, "w") as f:
            f.write("".join(json.dumps(o) + "\n" for o in lines))
        paths.append(pth)
    rc, out, err = run(["ingest", "--db", mdb] + paths)
    check(rc == 0, "ingest", msg="two-file ingest rc %d %s %s" % (rc, out, err))
    q = {"name": "multi", "stats": ["count", "sum", "traces"], "interval": "1d"}
    act, err = engine_query(mdb, q)
    exp = [{"count": 4, "sum": 103.5, "traces": 3, "series": [
        {"t": out_time(T0), "count": 3, "sum": 3.5},
        {"t": out_time(T0 + DAY), "count": 0, "sum": None},
        {"t": out_time(T0 + 2 * DAY), "count": 1, "sum": 100.0}]}]
    NCHECK["queries"] += 1
    d = err or diff(exp, act["groups"], "groups")
    check(d is None, "mismatch", label="multi-file", query=q, expected=exp,
          actual=act and act.get("groups"), msg="two files in one ingest: %s: %s" % (
              json.dumps(q), d))

    probes()

    # ---- default timestamp store
    ndb = os.path.join(WORK, "nots")
    t_before = int(time.time() * 1000)
    rc, summ = ingest(ndb, [json.dumps({"name": "nots", "value": 1, "trace_id": "x%d" % i})
                            for i in range(5)])
    t_after = int(time.time() * 1000) + 1
    q = {"name": "nots", "from": t_before, "to": t_after, "stats": ["count"]}
    act, err = engine_query(ndb, q)
    check(not err and act["groups"] == [{"count": 5}], "mismatch",
          msg="default timestamp is not the ingest time: %s -> %r" % (json.dumps(q), act or err))

    # ---- main data set
    db = os.path.join(WORK, "main")
    store = Store()
    lines1, idx = gen_file1(rng, a.scale)
    t = time.time()
    rc, summ = ingest(db, [line_of(o) for o in lines1])
    print("file1: %d lines, rc %d, %.1fs, %s" % (len(lines1), rc, time.time() - t,
                                                  {k: summ.get(k) for k in ("accepted", "rejected")}))
    check(rc == 0 and summ.get("accepted") == len(lines1) and summ.get("rejected") == 0,
          "ingest", msg="file1 ingest rc %d %r" % (rc, str(summ)[:500]))
    for o in lines1:
        store.put(o)
    rows = store.rows()
    print("stored after file1: %d" % len(rows))
    sample = rows[:: max(1, len(rows) // 2000)]
    sc = scale_of(rows)
    for i in range(max(10, a.queries // 10)):
        compare_query(db, rand_query(rng, sample), rows, "after-file1", sc)

    # ---- replacements of folded rows, and new rows
    lines2, idx = gen_replacements(rng, store, max(100, int(8000 * a.scale)), idx)
    rc, summ = ingest(db, [line_of(o) for o in lines2])
    check(rc == 0 and summ.get("accepted") == len(lines2), "ingest",
          msg="file2 ingest rc %d %r" % (rc, str(summ)[:500]))
    for o in lines2:
        store.put(o)
    # replacements through stdin
    lines3, idx = gen_replacements(rng, store, max(50, int(500 * a.scale)), idx)
    rc, summ = ingest(db, [line_of(o) for o in lines3], stdin=True)
    check(rc == 0 and summ.get("accepted") == len(lines3), "ingest",
          msg="stdin ingest rc %d %r" % (rc, str(summ)[:500]))
    for o in lines3:
        store.put(o)

    # ---- a mixed file: good rows stored, bad ones rejected with their line
    good, idx = gen_replacements(rng, store, 60, idx)
    bad = malformed_lines(rng.sample(list(store.by_id), 3))[:25]
    mixed = [(line_of(o), None) for o in good] + bad
    rng.shuffle(mixed)
    rc, summ = ingest(db, [l for l, _ in mixed])
    badset = set(bad)
    exp_bad = {i + 1 for i, lf in enumerate(mixed) if lf in badset}
    got_bad = {e.get("line") for e in summ.get("errors", [])}
    check(rc == 3 and summ.get("accepted") == len(good) and summ.get("rejected") == len(bad) and
          got_bad == exp_bad, "ingest-mixed",
          msg="mixed file: rc %d accepted %r rejected %r, bad lines expected %s got %s" % (
              rc, summ.get("accepted"), summ.get("rejected"), sorted(exp_bad), sorted(got_bad)))
    for l, f in mixed:
        if f is None:
            store.put(next(o for o in good if line_of(o) == l))

    # ---- malformed only: exit 3, all rejected, each naming its field, store unchanged
    before = snapshot(db)
    mal = malformed_lines(rng.sample(list(store.by_id), 5))
    rc, summ = ingest(db, [l for l, _ in mal])
    check(rc == 3, "malformed", msg="malformed file: exit %d, expected 3" % rc)
    check(summ.get("accepted") == 0 and summ.get("rejected") == len(mal), "malformed",
          msg="malformed file: accepted %r rejected %r of %d" % (
              summ.get("accepted"), summ.get("rejected"), len(mal)))
    errs = {e.get("line"): e.get("error", "") for e in summ.get("errors", [])}
    for i, (l, field) in enumerate(mal):
        e = errs.get(i + 1)
        if not check(e is not None, "malformed", msg="line %d not reported: %s" % (i + 1, l[:120])):
            continue
        if field:
            check(field in e, "malformed-message",
                  msg="line %d: error does not name %r: %r (row %s)" % (i + 1, field, e, l[:100]))
    after = snapshot(db)
    check(before == after, "malformed", msg="store changed by a file of rejected rows")

    rows = store.rows()
    print("stored in the end: %d (%d replaced-by-id lines in total)" % (
        len(rows), len(lines1) + len(lines2) + len(lines3) + 60 - len(rows)))
    sample = rows[:: max(1, len(rows) // 2000)]
    sc = scale_of(rows)
    check_names(db, rows)

    # ---- fixed queries over the main set (the features the brief lists)
    fixed = [
        {},
        {"stats": ["count", "avg", "min", "max", "sum", "stddev", "traces"]},
        {"group_by": ["name"], "stats": ["count", "avg", "min", "max", "sum", "stddev", "traces"]},
        {"group_by": ["name"], "stats": ["count", "avg", "stddev"], "interval": "1w"},
        {"name": "faithfulness", "histogram": {"bins": 20, "min": 0, "max": 1},
         "percentiles": [50, 90, 99], "group_by": ["prompt_version"]},
        {"name": "faithfulness", "histogram": {"bins": 10, "min": 0.2, "max": 0.8}},
        {"name": "latency_ms", "histogram": {"bins": 25}, "percentiles": [0, 50, 99.9, 100],
         "group_by": ["model"]},
        {"name": "hot", "interval": "1h", "stats": ["count", "avg", "min", "max", "sum"]},
        {"name": "hot", "interval": "1h", "stats": ["count", "stddev"]},
        {"name": "hot", "group_by": ["model"], "stats": ["count", "avg", "sum", "stddev"]},
        {"name": "hot", "from": T0 + 10 * DAY + 12345, "to": T0 + 11 * DAY + 999,
         "interval": "6h", "percentiles": [50]},
        {"names": ["helpful", "thumbs"], "group_by": ["name", "model"], "stats": ["count", "avg"]},
        {"name": "verdict", "group_by": ["model"], "stats": ["count", "traces"], "interval": "1w"},
        {"names": ["verdict", "faithfulness", "mixed"], "group_by": ["name"]},
        {"name": "mixed", "group_by": ["data_type"], "stats": ["count", "avg", "sum"],
         "percentiles": [50], "histogram": {"bins": 4}},
        {"name": "mixed", "stats": ["count", "avg", "sum"], "interval": "1w"},
        {"group_by": ["properties.feature", "properties.region"], "stats": ["count", "avg"]},
        {"where": {"tags": ["a", "b"], "properties": {"feature": ["search"]}},
         "group_by": ["source"], "stats": ["count", "sum", "traces"]},
        {"name": "toxicity", "stats": ["count", "avg", "stddev", "sum"], "interval": "1d"},
        {"name": "toxicity", "stats": ["stddev"], "group_by": ["model"]},
        {"name": "delta", "stats": ["count", "sum", "avg", "min", "max"],
         "where": {"value": {"gte": -10, "lt": 10}}, "group_by": ["environment"]},
        {"name": "faithfulness", "from": T0 + 3 * DAY + 1, "to": T0 + 17 * DAY - 1,
         "interval": "1d", "stats": ["count", "avg", "min", "max", "sum", "stddev"]},
        {"name": "faithfulness", "from": iso(T0 + 3 * DAY + 4321, 3, 120), "interval": "1d"},
        {"name": "faithfulness", "to": iso(T0 + 20 * DAY + 4321, 3, -330), "interval": "1w"},
        {"name": "faithfulness", "where": {"value": {"eq": 0.5}}, "stats": ["count"]},
        {"name": "faithfulness", "where": {"value": {"gt": 0.2, "lte": 0.4}},
         "stats": ["count", "min", "max"]},
        {"name": "nosuchname"},
        {"name": "faithfulness", "histogram": {"bins": 2000, "min": 0, "max": 1}},
        {"name": "hot", "histogram": {"bins": 10000, "min": 0, "max": 100}},
        {"name": "latency_ms", "histogram": {"bins": 3000}, "group_by": ["name"]},
        {"group_by": ["user_id"], "stats": ["count", "avg", "sum"]},
        {"name": "hot", "group_by": ["user_id"], "stats": ["count", "avg", "sum", "stddev"]},
        {"name": "hot", "group_by": ["user_id"], "stats": ["count", "avg", "min", "max"],
         "from": T0 + 10 * DAY, "to": T0 + 12 * DAY},
        {"name": "hot", "group_by": ["model"], "stats": ["count", "avg", "min", "max"],
         "from": T0 + 10 * DAY, "to": T0 + 12 * DAY},
        {"name": "hot", "group_by": ["model"], "stats": ["count", "avg", "min", "max", "stddev"],
         "from": T0 + 10 * DAY, "to": T0 + 12 * DAY},
        {"name": "hot", "group_by": ["name"], "stats": ["count", "avg", "stddev"],
         "from": T0 + 10 * DAY, "to": T0 + 12 * DAY, "interval": "1d"},
        {"name": "hot", "from": T0 + 10 * DAY, "to": T0 + 12 * DAY, "interval": "1d"},
        {"name": "faithfulness", "where": {"model": ["nosuch"]}},
        {"name": "faithfulness", "from": T0 + 500 * DAY},
        {"name": "faithfulness", "from": T0 + 5 * DAY, "to": T0 + 5 * DAY},
    ]
    for q in fixed:
        compare_query(db, q, rows, "fixed", sc)

    # ---- random queries
    envs = [None]
    if a.kernels:
        envs += [{"SDB_KERNELS": "scalar"}, {"SDB_KERNELS": "avx2"}]
    for i in range(a.queries):
        q = rand_query(rng, sample)
        compare_query(db, q, rows, "random#%d" % i, sc)
        if i % 3 == 0:
            for env in envs[1:]:
                compare_query(db, q, rows, "random#%d %s" % (i, env["SDB_KERNELS"]), sc, env)

    fails_path = os.path.join(WORK, "failures.jsonl")
    with open(fails_path, "w") as f:
        for x in FAILS:
            f.write(json.dumps(x, ensure_ascii=False, default=str) + "\n")
    print("%d queries compared, %d checks, %d failures (details in %s)"
          % (NCHECK["queries"], NCHECK["checks"], len(FAILS), fails_path))
    print("coverage (queries per feature): " + ", ".join(
        "%s %d" % kv for kv in sorted(COVER.items())))
    kinds = {}
    for x in FAILS:
        kinds[x["kind"]] = kinds.get(x["kind"], 0) + 1
    if kinds:
        print("failures by kind: %s" % kinds)
        for x in FAILS[:5]:
            print("  " + json.dumps(x, ensure_ascii=False, default=str)[:400])
    elif own_work:
        shutil.rmtree(WORK, ignore_errors=True)
    print("reference: %d passed, %d failed" % (NCHECK["checks"] - len(FAILS), len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
