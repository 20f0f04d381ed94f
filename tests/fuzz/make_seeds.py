#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/ (run from the
repository root; files are overwritten, fuzzer-found inputs are kept).

Binary seeds follow the layouts drawn in engine/internal.h (segment) and
engine/row.c (row record): little-endian, native doubles."""
import os, struct

C = "tests/fuzz/corpus"

def put(target, name, data):
    os.makedirs(f"{C}/{target}", exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(f"{C}/{target}/{name}", "wb") as f:
        f.write(data)

# ---------------------------------------------------------------- score
scores = {
    "numeric": '{"name":"faithfulness","value":0.82,"trace_id":"t1"}',
    "boolean": '{"name":"pass","value":true,"session_id":"s1","data_type":"BOOLEAN"}',
    "boolean_01": '{"name":"pass","value":1,"trace_id":"t1","data_type":"BOOLEAN"}',
    "categorical": '{"name":"tone","value":"polite","dataset_run_id":"r1","data_type":"CATEGORICAL"}',
    "full": '{"id":"s-1","name":"faithfulness","value":0.5,"data_type":"NUMERIC",'
            '"trace_id":"t1","observation_id":"o1","session_id":"s1","dataset_run_id":"d1",'
            '"timestamp":"2026-01-31T07:05:32.780Z","source":"EVAL","environment":"production",'
            '"model":"gpt-4o","prompt_version":"v2","trace_name":"chat","user_id":"u1",'
            '"author":"a","config_id":"c1","tags":["x","y"],"properties":{"feature":"search"},'
            '"comment":"ok","metadata":{"k":[1,2,{"z":null}]}}',
    "epoch_ts": '{"name":"n","value":-1e300,"trace_id":"t","timestamp":1769817600000}',
    "nulls": '{"name":"n","value":0,"trace_id":"t","timestamp":null,"source":null,"tags":null,'
             '"properties":null,"metadata":null,"model":null}',
    "bad_type_mismatch": '{"name":"n","value":"x","trace_id":"t","data_type":"NUMERIC"}',
    "bad_no_parent": '{"name":"n","value":1}',
    "bad_obs_no_trace": '{"name":"n","value":1,"session_id":"s","observation_id":"o"}',
    "bad_unknown": '{"name":"n","value":1,"trace_id":"t","colour":"red"}',
    "bad_dup_key": '{"name":"n","name":"m","value":1,"trace_id":"t"}',
    "bad_long_name": '{"name":"' + "n" * 201 + '","value":1,"trace_id":"t"}',
    "bad_prop_value": '{"name":"n","value":1,"trace_id":"t","properties":{"a":1}}',
    "bad_json": '{"name":"n","value":1,',
    "bad_array": '[1,2,3]',
    "bad_nan": '{"name":"n","value":1e999,"trace_id":"t"}',
    "bad_time": '{"name":"n","value":1,"trace_id":"t","timestamp":"2026-02-30T00:00:00Z"}',
    # The string rules (docs/input.md): raw control bytes and \u0000 in a
    # string are refused, escapes and white space between tokens are not.
    "bad_raw_nul_id": '{"id":"victim\0x","name":"n","value":1,"trace_id":"t"}',
    "bad_raw_ctl_name": '{"name":"n\x01","value":1,"trace_id":"t"}',
    "bad_raw_tab_prop_key": '{"name":"n","value":1,"trace_id":"t","properties":{"k\t":"v"}}',
    "bad_nul_escape_tag": '{"name":"n","value":1,"trace_id":"t","tags":["a","\\u0000"]}',
    "bad_ctl_outside": '{"name":"n",\x0b"value":1,"trace_id":"t"}',
    "escapes_ok": '{"name":"n\\t\\n\\"q\\"","value":1,"trace_id":"t","comment":"\\\\u0000 \\u0001"}',
    "white_space_ok": '{\t"name" :\r"n",\n"value":1,"trace_id":"t"}',
}
for k, v in scores.items():
    put("score", k, v)

# ----------------------------------------------------------------- body
s1 = '{"name":"a","value":1,"trace_id":"t"}'
s2 = '{"name":"b","value":"x","session_id":"s"}'
bad = '{"name":"c","value":1}'
bodies = {
    "array": f"[{s1},{s2}]",
    "array_mixed": f"[{s1},{bad},3,null,{s2}]",
    "scores_obj": f'{{"scores":[{s1},{bad}]}}',
    "scores_extra": f'{{"scores":[{s1}],"more":1}}',
    "scores_not_array": '{"scores":{"a":1}}',
    "ndjson": f"{s1}\n{s2}\n",
    "ndjson_blank_crlf": f"\r\n  {s1}\r\n\n\t{bad}\r\n{s2}",
    "ndjson_garbage": f"{s1}\nnot json\n[1]\n",
    "empty": "",
    "empty_array": "[]",
    "too_many": "[" + ",".join([s1] * 101) + "]",
    "too_many_ndjson": "\n".join([s1] * 101),
    "array_raw_nul": f'[{s1},\n{{"id":"v\0","name":"a","value":1,"trace_id":"t"}},{s2}]',
    "scores_ctl_deep": f'{{"scores":[{s1},{{"name":"a","value":1,"trace_id":"t","metadata":{{"m":[{{"d":"\x1f"}}]}}}}]}}',
    "ndjson_raw_ctl": f'{s1}\n{{"name":"a\x02","value":1,"trace_id":"t"}}\n',
    "array_ctl_outside": f'[{s1},\x01{s2}]',
}
for k, v in bodies.items():
    put("body", k, v)

# ---------------------------------------------------------------- query
queries = {
    "empty": "{}",
    "name_stats": '{"name":"faithfulness","stats":["count","avg","min","max","sum","stddev","traces"]}',
    "names_range": '{"names":["faithfulness","relevance"],"from":"2026-01-01T00:00:00Z","to":1767830400000}',
    "where": '{"where":{"value":{"gte":0.2,"lt":0.8},"source":["EVAL"],"data_type":["NUMERIC"],'
             '"model":["gpt-4o","claude"],"environment":"production","tags":["b"],'
             '"properties":{"feature":["f1"]}}}',
    "group_by": '{"group_by":["model","prompt_version","properties.feature","name"]}',
    "group_one_dim": '{"group_by":["model"]}',
    "group_source_type": '{"group_by":["source","data_type"],"stats":["traces"]}',
    "interval": '{"name":"faithfulness","interval":"1d","from":"2026-01-01T00:00:00Z","to":"2026-01-20T00:00:00Z"}',
    "interval_week": '{"interval":"1w","stats":["stddev"]}',
    "interval_open": '{"interval":"6h","group_by":["name"]}',
    "histogram": '{"histogram":{"bins":20,"min":0,"max":1},"percentiles":[0,50,90,99,100]}',
    "histogram_auto": '{"name":"relevance","histogram":{"bins":3},"percentiles":[1,2,3,4,5,6,7,8,9,10]}',
    "categorical": '{"name":"tone","group_by":["model"],"interval":"1d"}',
    "eq_filter": '{"where":{"value":{"eq":0.5}},"group_by":["name"]}',
    "search": '{"name":"faithfulness","where":{"value":{"gt":0.1}},"limit":5,"cursor":"t1"}',
    "search_limit": '{"limit":1}',
    "bad_both": '{"name":"a","names":["b"]}',
    "bad_to_before": '{"from":100,"to":50}',
    "bad_interval": '{"interval":"0d"}',
    "bad_too_many_intervals": '{"interval":"1s","from":0,"to":"2026-01-01T00:00:00Z"}',
    "bad_group": '{"group_by":["nope"]}',
    "bad_hist": '{"histogram":{"bins":0}}',
    "bad_pct": '{"percentiles":[101]}',
    "bad_where": '{"where":{"value":{"gt":"x"}}}',
    "extreme_times": '{"from":-9223372036854775808,"to":9223372036854775807,"interval":"100000w"}',
    "bad_group_twice": '{"group_by":["model","model"]}',
    "bad_raw_ctl_where": '{"where":{"model":["m\x01"]}}',
    "bad_nul_escape_name": '{"name":"a\\u0000"}',
}
for k, v in queries.items():
    put("query", k, v)

# ----------------------------------------------------------------- time
times = ["2026-01-31T07:05:32.780Z", "2026-01-31 07:05:32+05:30", "2026-01-31t07:05z",
         "2026-01-31", "2024-02-29T23:59:60.999999Z", "0000-01-01T00:00:00-23:59",
         "9999-12-31T23:59:59.999+00:00", "2025-02-29", "2026-13-01", "2026-01-31T07:05",
         "2026-01-31T24:00:00Z", "10m", "1h30m", "500ms", "2d", "0", "1w2d3h4m5s6ms",
         "10", "m", "", "99999999999999w"]
for i, t in enumerate(times):
    put("time", f"t{i:02d}", t)
put("time", "int64_min_ms", struct.pack("<q", -2**63))
put("time", "int64_max_ms", struct.pack("<q", 2**63 - 1))

# -------------------------------------------------------------- segment
# Segment version 3 (engine/internal.h): the 128-byte header, then ts
# (offsets from ts_min, packed, or raw i64), value (f64, f32, or decimal
# entries packed), the trace dictionary, trace (indexes packed, or raw
# u64), ref (offsets from ref_base, packed, or raw u64), one u{dim_w[d]}
# array per dimension, tsrc u8 (type | source << 2). A packed column of b
# bits (1..32) is the entries' bits little-endian plus 7 bytes; b 0 takes
# none; 64 means raw 8-byte entries.
RAW = 64

def le(x, w):  # the low w bytes of x, little-endian (w 0: none)
    return (x % 2**(8 * w)).to_bytes(w, "little")

def packed(xs, b):
    if b == RAW:
        return b"".join(le(x, 8) for x in xs)
    if b == 0:
        return b""
    acc = 0
    for i, x in enumerate(xs):
        acc |= (x % 2**b) << (i * b)
    return acc.to_bytes((len(xs) * b + 7) // 8, "little") + bytes(7)

def bits_of(span):
    b = span.bit_length()
    return b if b <= 32 else RAW

def segment(rows, magic=0x47455353, version=3, n=None, types=None, dim_w=None, ref_bits=None,
            ts_bits=None, tr_bits=None, v_enc=0, v_exp=0, v_bits=None, n_tdict=None):
    n = len(rows) if n is None else n
    nt = [0, 0, 0]
    for r in rows:
        t = r["type"] & 3
        nt[t if t < 3 else 0] += 1
    if types is not None:
        nt = types
    def w(m):
        return 0 if m == 0 else 1 if m < 256 else 2 if m < 65536 else 4
    if dim_w is None:
        dim_w = [w(max((r["dims"][d] for r in rows), default=0)) for d in range(6)]
    refs = [r["ref"] for r in rows]
    ref_base = min(refs, default=0)
    if ref_bits is None:
        ref_bits = bits_of(max(refs, default=0) - ref_base)
    ts = [r["ts"] for r in rows]
    t0 = min(ts, default=0)
    if ts_bits is None:
        ts_bits = bits_of(max(ts, default=0) - t0)
    vals = [r["v"] for r in rows]
    # values: f64 (0), f32 (1) or decimal (2) at exponent v_exp
    ints = [round(v * 10**v_exp) for v in vals]
    v_base = min(ints, default=0) if v_enc == 2 else 0
    if v_bits is None:
        v_bits = bits_of(max(ints, default=0) - v_base) if v_enc == 2 else 0
    traces = sorted(set(r["trace"] for r in rows))
    if tr_bits is None:
        tr_bits = RAW
    nd = len(traces) if tr_bits != RAW else 0
    nd = nd if n_tdict is None else n_tdict
    hdr = struct.pack("<IHHI3I", magic, version, 0, n, *nt)
    hdr += struct.pack("<qqdddd q", t0, max(ts, default=0),
                       min(vals, default=0.0), max(vals, default=0.0), sum(vals), 0.0,
                       0)
    hdr += struct.pack("<dd", vals[0] if vals else 0.0, 0.0)  # k, dm
    hdr += struct.pack("<Q6BBBBBBBIq", ref_base, *dim_w, ref_bits, ts_bits, v_enc, v_bits,
                       v_exp, tr_bits, nd, v_base)
    assert len(hdr) == 128
    body = packed(ts, RAW) if ts_bits == RAW else packed([t - t0 for t in ts], ts_bits)
    if v_enc == 0:
        body += b"".join(struct.pack("<d", v) for v in vals)
    elif v_enc == 1:
        body += b"".join(struct.pack("<f", v) for v in vals)
    else:
        body += packed([i - v_base for i in ints], v_bits)
    if tr_bits == RAW:
        body += packed([r["trace"] for r in rows], RAW)
    else:
        body += b"".join(struct.pack("<Q", h) for h in traces[:nd])
        body += packed([traces.index(r["trace"]) for r in rows], tr_bits)
    body += packed([(r - ref_base) % 2**64 for r in refs], ref_bits)
    for d in range(6):
        body += b"".join(le(r["dims"][d], dim_w[d]) for r in rows)
    body += bytes((r["type"] & 3) | (r["src"] & 3) << 2 if r["type"] < 4 else r["type"]
                  for r in rows)
    return hdr + body

def row(i, t=0, dims=None, ref=None):
    return {"ts": 1767225600000 + i * 1000, "v": i / 10, "trace": 0x1234 + i % 4,
            "ref": 1000 + i if ref is None else ref,
            "dims": [1, i % 3, 0, 2, 0, 1] if dims is None else dims, "type": t, "src": i % 3}

for old in ("bad_ref_base_wraps", "bad_ref_width"):  # version-2 seeds
    if os.path.exists(f"{C}/segment/{old}"):
        os.remove(f"{C}/segment/{old}")
rows3 = [row(0), row(1, 1), row(2, 2)]
put("segment", "three_rows", segment(rows3))
put("segment", "empty", segment([], ts_bits=0, ref_bits=0))
put("segment", "one_row", segment([row(7)]))
put("segment", "ten_rows", segment([row(i, i % 3) for i in range(10)]))
put("segment", "decimals_dict", segment([row(i) for i in range(40)], v_enc=2, v_exp=1, tr_bits=2))
put("segment", "f32_values", segment([row(i) for i in range(20)], v_enc=1))
put("segment", "raw_times", segment([row(0), row(1) | {"ts": 2**40}]))
# Every width: 0 (absent), 1, 2 and 4-byte dimensions; raw refs.
wide = [row(i, i % 3, dims=[i, 300 + i, 0, 70000 + i, 255, 65535 + i]) for i in range(5)]
put("segment", "wide_dims", segment(wide))
put("segment", "all_dims_absent", segment([row(i, dims=[0] * 6) for i in range(4)]))
put("segment", "ref_u64", segment([row(0, ref=5), row(1, ref=2**40), row(2, ref=2**64 - 1)]))
put("segment", "ref_u32_span_max", segment([row(0, ref=7), row(1, ref=7 + 2**32 - 1)]))
put("segment", "wider_than_needed", segment(rows3, dim_w=[4] * 6, ref_bits=RAW, ts_bits=RAW))
put("segment", "bad_magic", segment(rows3, magic=0x12345678))
put("segment", "bad_version", segment(rows3, version=2))
put("segment", "bad_count", segment(rows3, n=4))
put("segment", "bad_type_counts", segment(rows3, types=[3, 1, 0]))
put("segment", "bad_dim_width", segment(rows3, dim_w=[1, 3, 0, 1, 0, 1]))
put("segment", "bad_ref_bits", segment(rows3, ref_bits=33))
put("segment", "bad_dict_count", segment([row(i) for i in range(8)], tr_bits=2, n_tdict=9))
# Decimal fields on f64 values: refused.
put("segment", "bad_exp_on_f64", segment(rows3, v_exp=1)[:114] + b"\x01" + segment(rows3)[115:])
# The header claims 2-byte columns the body does not have (and the reverse).
put("segment", "width_length_mismatch", segment(rows3)[:128] + segment(rows3, dim_w=[2] * 6)[128:])
put("segment", "width_claims_more", segment(rows3, dim_w=[2] * 6)[:128] + segment(rows3)[128:])
put("segment", "truncated", segment(rows3)[:-1])
put("segment", "short_header", segment(rows3)[:100])
# Type 3 and stray high bits in the tsrc byte: read as two 2-bit fields.
put("segment", "type_out_of_range", segment([row(0, 7), row(1, 255)], types=[2, 0, 0]))
# preagg values: per dimension a u16 count (0xFFFF: not kept) then 56-byte
# entries (id, n, sum, m2, min, max, k, dm)
pe = struct.pack("<IIdddddd", 1, 3, 1.5, 0.25, 0.1, 0.9, 0.1, 0.4)
put("segment", "preagg", b"".join(struct.pack("<H", 1) + pe for _ in range(6)))
put("segment", "preagg_skipped", struct.pack("<H", 0xFFFF) + struct.pack("<H", 2) + pe + pe)
put("segment", "preagg_short", struct.pack("<H", 3) + pe)
# an all-categorical chunk's label counts: u16 0xFFFE, u32 m, m x (u32 id, u32 count)
put("segment", "preagg_labels", struct.pack("<HI", 0xFFFE, 3) + struct.pack("<6I", 1, 5, 2, 7, 3, 1))
put("segment", "preagg_labels_short", struct.pack("<HI", 0xFFFE, 3) + struct.pack("<4I", 1, 5, 2, 7))

# ------------------------------------------------------------------ row
# Version 3 (engine/row.c): version, type|source<<2, dims mask, strings
# mask, lists mask, the 40-byte fixed part (no trace hash), the present
# dims, then the present strings (str16 x6, str32 x2), tags and properties.
def s16(s):
    return struct.pack("<H", len(s)) + s

def s32(s):
    return struct.pack("<I", len(s)) + s

def record(strs=(b"id-1", b"t1", None, b"s1", None, b""), comment=b"nice",
           meta=b'{"k":1}', tags=(b"a", b"bb"), props=((b"feature", b"search"),), ver=3,
           dims=(1, 2, 0, 0, 0, 0), type_src=0x04, lists=None):
    allstr = list(strs) + [comment, meta]
    smask = sum(1 << i for i, x in enumerate(allstr) if x is not None)
    dmask = sum(1 << i for i, x in enumerate(dims) if x)
    lmask = (1 if tags else 0) | (2 if props else 0) if lists is None else lists
    r = bytes([ver, type_src, dmask, smask, lmask])
    r += struct.pack("<qqdQII", 1767225600000, 1767225600001, 0.5, 42, 0, 1)
    r += b"".join(struct.pack("<I", d) for d in dims if d)
    r += b"".join((s16(x) if i < 6 else s32(x)) for i, x in enumerate(allstr) if x is not None)
    if tags:
        r += struct.pack("<H", len(tags)) + b"".join(s16(t) for t in tags)
    if props:
        r += struct.pack("<H", len(props)) + b"".join(s16(k) + s16(v) for k, v in props)
    return r

put("row", "full", record())
put("row", "minimal", record(strs=(b"i", b"t", None, None, None, None), comment=None,
                             meta=None, tags=(), props=(), dims=(0,) * 6))
put("row", "absent_tag", record(tags=(b"", b"x")))
put("row", "many_props", record(props=tuple((b"k%d" % i, b"v%d" % i) for i in range(20))))
put("row", "bad_version", record(ver=1))
put("row", "truncated", record()[:-3])
put("row", "short", record()[:50])
put("row", "tag_count_lies", record(props=())[:-(2 + 1 + 2 + 2)] + struct.pack("<H", 9))
put("row", "huge_comment", record(strs=(b"i",) * 6, comment=b"", meta=None, tags=(),
                                  props=())[:-4] + struct.pack("<I", 0xFFFFFFF0))
put("row", "bad_type", record(type_src=0x03))
put("row", "bad_masks", record(lists=0x04))
put("row", "trailing_bytes", record() + b"x")
# id as a packed UUID (lists bits 2-3 = 1: 16 bytes), trace_id as packed hex
# (bits 4-5 = 2: a byte count, then the bytes)
def packed(hex_trace_bytes, uuid=bytes(range(16)), lists=0x01 | 1 << 2 | 2 << 4):
    r = bytes([3, 0x04, 0, 0x03, lists])
    r += struct.pack("<qqdQII", 1767225600000, 1767225600001, 0.5, 42, 0, 1)
    r += uuid + bytes([len(hex_trace_bytes)]) + hex_trace_bytes
    r += struct.pack("<H", 1) + struct.pack("<H", 1) + b"a"
    return r
put("row", "packed_ids", packed(bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")))
put("row", "packed_hex_empty", packed(b""))
put("row", "packed_bad_kind", packed(b"\x01", lists=0x01 | 3 << 2))
