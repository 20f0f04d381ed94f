/* gen — the benchmark's deterministic score generator.
 *
 * Writes N score objects (API.md "Score object") as NDJSON and the same rows
 * as CSV for the peers (DuckDB, SQLite), in one pass so that both files hold
 * byte-identical values. Everything derives from one fixed seed through our
 * own PRNG (splitmix64 to seed xoshiro256**, Blackman & Vigna 2018), so two
 * runs with the same N produce the same bytes on any machine.
 *
 * The shape imitates an LLM evaluation workload:
 * - 50 score names with Zipf(1) frequencies: the most frequent carries about
 *   22% of the rows (1 / H(50) = 1 / 4.499);
 * - value kinds per name: numeric in [0, 1] (about half the names), integer
 *   grades 1..5, booleans and categorical labels;
 * - 90 days ending at 2026-11-01T00:00:00Z, rows roughly in arrival order
 *   with +-30 minutes of jitter (late and early scores);
 * - about 0.3 N distinct traces (32 hex digits); model (8), prompt version
 *   (20) and environment (3) belong to the trace, source (3) to the score;
 * - timestamps alternate between epoch milliseconds and RFC 3339 strings;
 * - tags and properties belong to the trace, as Langfuse puts them on the
 *   trace and its scores inherit them: 0-3 tags (20/40/30/10%) from a
 *   vocabulary of 12 with Zipf(1) frequencies (`rag`, the first, is on
 *   about 37% of the traces), and two property keys on every trace,
 *   `feature` (5 values, 35/25/20/12/8%) and `customer_tier` (free 60%,
 *   pro 30%, enterprise 10%). They derive from the trace number through
 *   mix64, not from the row generator's stream, so every other column
 *   (names, values, times, traces, dimensions) is byte-identical to what
 *   the generator wrote before it had them.
 *
 * Usage: gen [-n ROWS] [--ndjson PATH] [--csv PATH] [--ids none|uuid4|uuid7]
 *            [--traces uniform|local] [--info]
 * --traces says how a score picks its trace. uniform (the default, and
 * what every stored benchmark file was made with) draws it from all the
 * traces, so a trace's ~3.3 scores are spread over the 90 days and the
 * names: almost no chunk repeats a trace. local draws it among the 17
 * traces nearest the row's place in arrival order, so a trace's scores
 * arrive together (their times then differ by the rows' own +-30 minutes
 * of jitter), as with an application that scores each trace when it ends
 * and judges that run right after. Same trace count, same
 * dimensions per trace; only the rows' choice of trace (one draw either
 * way) differs.
 * --ids gives every NDJSON score an "id" as clients send them: uuid4 random
 * (what every Langfuse SDK sends), uuid7 time-ordered (RFC 9562: 48 bits of
 * the row's arrival millisecond, then random bits). The ids come from a
 * second generator, so the scores themselves are byte-identical whatever
 * --ids says, and the CSV never carries them.
 * --info prints the time range and the name table (rank order) as JSON, for
 * the scripts that build the queries. Tuned for speed: hand-rolled
 * formatting into a large buffer; 10M rows take a few seconds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_NAMES 50
#define DAY_MS 86400000LL
#define END_MS 1793491200000LL /* 2026-11-01T00:00:00Z */
#define SPAN_MS (90 * DAY_MS)
#define START_MS (END_MS - SPAN_MS)
#define JITTER_MS 1800000LL
#define LOCAL_SPAN 17 /* --traces local: the traces a row picks among */

/* Score names in rank order: rank 1 is the most frequent. */
static const char *const NAMES[N_NAMES] = {
    "faithfulness", "answer_relevance", "helpfulness", "user_feedback",
    "correctness", "context_precision", "toxicity", "conciseness",
    "coherence", "context_recall", "hallucination", "harmfulness",
    "groundedness", "tone", "completeness", "safety",
    "instruction_following", "answer_similarity", "fluency", "sentiment",
    "json_validity", "latency_sla", "bias", "readability",
    "citation_accuracy", "retrieval_mrr", "pii_leak", "code_correctness",
    "sql_validity", "refusal", "summary_quality", "relevance_grade",
    "style_match", "factual_consistency", "empathy", "task_success",
    "context_relevance", "answer_correctness_v2", "noise_sensitivity",
    "topic_adherence", "tool_call_accuracy", "goal_accuracy",
    "agent_efficiency", "format_compliance", "brand_voice", "creativity",
    "depth", "clarity", "engagement", "policy_compliance"};

enum kind { K_NUM01, K_INT5, K_BOOL, K_CAT };
static const char *const KIND_NAME[] = {"numeric01", "int1to5", "boolean",
                                        "categorical"};
static const char *const DATA_TYPE[] = {"NUMERIC", "NUMERIC", "BOOLEAN",
                                        "CATEGORICAL"};

/* Pattern of kinds over name index i % 8: ranks 1 and 10 (the benchmark's
 * frequent and typical names) are numeric in [0, 1]. */
static enum kind name_kind(int i)
{
    static const enum kind pat[8] = {K_NUM01, K_NUM01, K_INT5, K_BOOL,
                                     K_NUM01, K_NUM01, K_CAT,  K_BOOL};
    return pat[i % 8];
}

static const char *const MODELS[8] = {
    "gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "claude-3-haiku",
    "gemini-1.5-pro", "llama-3.1-70b", "mistral-large", "qwen2.5-72b"};
static const char *const ENVS[3] = {"production", "staging", "development"};
static const char *const SOURCES[3] = {"API", "EVAL", "ANNOTATION"};
#define N_TAGS 12
static const char *const TAGS[N_TAGS] = {
    "rag", "chat", "agent", "tool-use", "web", "mobile", "api", "beta",
    "long-context", "summarize", "experiment-a", "experiment-b"};
static const char *const FEATURES[5] = {"search", "chat", "summarize", "code", "support"};
static const char *const TIERS[3] = {"free", "pro", "enterprise"};
static const char *const LABELS[2][3] = {{"pass", "partial", "fail"},
                                         {"positive", "neutral", "negative"}};

/* ------------------------------------------------------------------ PRNG */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A stateless hash of one 64-bit value (one splitmix64 step). */
static uint64_t mix64(uint64_t x)
{
    return splitmix64(&x);
}

static uint64_t rng_s[4];

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(void)
{
    uint64_t r = rotl(rng_s[1] * 5, 7) * 9;
    uint64_t t = rng_s[1] << 17;
    rng_s[2] ^= rng_s[0];
    rng_s[3] ^= rng_s[1];
    rng_s[1] ^= rng_s[2];
    rng_s[0] ^= rng_s[3];
    rng_s[2] ^= t;
    rng_s[3] = rotl(rng_s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_unit(void)
{
    return (double)(next_u64() >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n) (n small; the modulo bias is below 2^-50). */
static uint64_t next_below(uint64_t n)
{
    return next_u64() % n;
}

/* --------------------------------------------------------------- output */

typedef struct out {
    FILE *f;
    char *buf;
    size_t len, cap;
} out;

static void out_flush(out *o)
{
    if (o->f && o->len) {
        if (fwrite(o->buf, 1, o->len, o->f) != o->len) {
            perror("gen: write");
            exit(1);
        }
    }
    o->len = 0;
}

/* Make room for at least `need` more bytes (rows are far smaller). */
static void out_reserve(out *o, size_t need)
{
    if (o->len + need > o->cap)
        out_flush(o);
}

static void put_str(out *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_ch(out *o, char c)
{
    o->buf[o->len++] = c;
}

static void put_i64(out *o, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u;
    if (v < 0) {
        put_ch(o, '-');
        u = (uint64_t)0 - (uint64_t)v;
    } else {
        u = (uint64_t)v;
    }
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        put_ch(o, tmp[--n]);
}

/* Zero-padded decimal of `width` digits. */
static void put_pad(out *o, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        o->buf[o->len + (size_t)i] = (char)('0' + v % 10);
        v /= 10;
    }
    o->len += (size_t)width;
}

/* A double that reads back to the same bits (17 significant digits). */
static void put_f64(out *o, double v)
{
    int n = snprintf(o->buf + o->len, 32, "%.17g", v);
    o->len += (size_t)n;
}

/* RFC 3339 UTC with milliseconds; civil-from-days after H. Hinnant,
 * "chrono-Compatible Low-Level Date Algorithms". ms is positive here. */
static void put_rfc3339(out *o, int64_t ms)
{
    int64_t days = ms / DAY_MS, rem = ms % DAY_MS;
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    put_pad(o, y, 4);
    put_ch(o, '-');
    put_pad(o, m, 2);
    put_ch(o, '-');
    put_pad(o, d, 2);
    put_ch(o, 'T');
    put_pad(o, rem / 3600000, 2);
    put_ch(o, ':');
    put_pad(o, rem / 60000 % 60, 2);
    put_ch(o, ':');
    put_pad(o, rem / 1000 % 60, 2);
    put_ch(o, '.');
    put_pad(o, rem % 1000, 3);
    put_ch(o, 'Z');
}

static void put_hex64(out *o, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--)
        o->buf[o->len + (size_t)(15 - i)] = hex[(v >> (4 * i)) & 15];
    o->len += 16;
}

/* ------------------------------------------------------------------ rows */

/* Mean quality in [0.35, 0.85] of (name, model, prompt version): stable,
 * so that group-by and comparisons show real differences. */
static double quality(int name, int model, int prompt)
{
    uint64_t h = mix64(((uint64_t)name << 32) ^ ((uint64_t)model << 16) ^
                       (uint64_t)prompt ^ 0x5c0bedb5ULL);
    return 0.35 + 0.5 * (double)(h >> 11) * 0x1.0p-53;
}

/* A trace's tags (indexes into TAGS, distinct, in draw order) and
 * properties, from its number alone (see the top comment). Returns the
 * tag count. tag_cdf is Zipf(1) over the 12 tags. */
static int trace_attrs(uint64_t trace, const double *tag_cdf, int tags[3], int *feature,
                       int *tier)
{
    uint64_t h = mix64(trace ^ 0x7a9ba77b5ULL);
    int k10 = (int)(h % 10), want = k10 < 2 ? 0 : k10 < 6 ? 1 : k10 < 9 ? 2 : 3, n = 0;
    /* Distinct Zipf draws; a few tries each (a repeat of a frequent tag
     * is likely), so a trace may end with fewer tags than it drew. */
    for (int tries = 0; n < want && tries < 8; tries++) {
        h = mix64(h);
        double u = (double)(h >> 11) * 0x1.0p-53;
        int t = 0;
        while (t < N_TAGS - 1 && u >= tag_cdf[t]) t++;
        int dup = 0;
        for (int j = 0; j < n; j++) dup |= tags[j] == t;
        if (!dup) tags[n++] = t;
    }
    uint64_t g = mix64(h ^ 0xfea75ULL);
    int f100 = (int)(g % 100), t100 = (int)((g >> 32) % 100);
    *feature = f100 < 35 ? 0 : f100 < 60 ? 1 : f100 < 80 ? 2 : f100 < 92 ? 3 : 4;
    *tier = t100 < 60 ? 0 : t100 < 90 ? 1 : 2;
    return n;
}

static void print_info(void)
{
    printf("{\"start_ms\":%lld,\"end_ms\":%lld,\"names\":[", (long long)START_MS,
           (long long)END_MS);
    for (int i = 0; i < N_NAMES; i++) {
        enum kind k = name_kind(i);
        printf("%s{\"rank\":%d,\"name\":\"%s\",\"kind\":\"%s\",\"data_type\":\"%s\"}",
               i ? "," : "", i + 1, NAMES[i], KIND_NAME[k], DATA_TYPE[k]);
    }
    /* Tags in rank order, property values in frequency order. */
    printf("],\"tags\":[");
    for (int i = 0; i < N_TAGS; i++) printf("%s\"%s\"", i ? "," : "", TAGS[i]);
    printf("],\"properties\":{\"feature\":[");
    for (int i = 0; i < 5; i++) printf("%s\"%s\"", i ? "," : "", FEATURES[i]);
    printf("],\"customer_tier\":[");
    for (int i = 0; i < 3; i++) printf("%s\"%s\"", i ? "," : "", TIERS[i]);
    printf("]}}\n");
}

/* A UUID in canonical lower-case form: version 4 (122 random bits) or
 * version 7 (ms in the top 48 bits). */
static void put_uuid(out *o, uint64_t hi, uint64_t lo, int version, int64_t ms)
{
    static const char hex[] = "0123456789abcdef";
    if (version == 7)
        hi = (uint64_t)ms << 16 | (hi & 0xFFFu);
    hi = (hi & ~0xF000ull) | (uint64_t)version << 12;
    lo = (lo & ~(3ull << 62)) | 2ull << 62;
    char *p = o->buf + o->len;
    int k = 0;
    for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            p[k++] = '-';
        uint64_t w = i < 16 ? hi : lo;
        p[k++] = hex[(w >> (4 * (15 - (i & 15)))) & 15];
    }
    o->len += 36;
}

static void usage(void)
{
    fprintf(stderr, "usage: gen [-n ROWS] [--ndjson PATH|-] [--csv PATH] [--ids none|uuid4|uuid7] "
                    "[--traces uniform|local] [--info]\n");
    exit(2);
}

static FILE *open_out(const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdout;
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

int main(int argc, char **argv)
{
    uint64_t n_rows = 10000000;
    const char *nd_path = NULL, *csv_path = NULL;
    int ids = 0; /* 0 none, 4 uuid4, 7 uuid7 */
    int local = 0; /* --traces: 0 uniform, 1 local */

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            char *end;
            n_rows = strtoull(argv[++i], &end, 10);
            if (*end || n_rows == 0)
                usage();
        } else if (strcmp(argv[i], "--ndjson") == 0 && i + 1 < argc) {
            nd_path = argv[++i];
        } else if (strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
            csv_path = argv[++i];
        } else if (strcmp(argv[i], "--ids") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            ids = !strcmp(v, "none") ? 0 : !strcmp(v, "uuid4") ? 4 : !strcmp(v, "uuid7") ? 7 : -1;
            if (ids < 0)
                usage();
        } else if (strcmp(argv[i], "--traces") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            local = !strcmp(v, "uniform") ? 0 : !strcmp(v, "local") ? 1 : -1;
            if (local < 0)
                usage();
        } else if (strcmp(argv[i], "--info") == 0) {
            print_info();
            return 0;
        } else {
            usage();
        }
    }
    if (!nd_path && !csv_path)
        nd_path = "-";

    uint64_t seed = 0x5C0BEDB5C0BEDB5ULL;
    for (int i = 0; i < 4; i++)
        rng_s[i] = splitmix64(&seed);
    uint64_t id_seed = 0x1D5EED1D5EEDULL; /* the ids' own stream */

    /* Zipf(1) over ranks 1..50 as a cumulative table. */
    double cdf[N_NAMES], total = 0;
    for (int i = 0; i < N_NAMES; i++)
        total += 1.0 / (i + 1);
    double acc = 0;
    for (int i = 0; i < N_NAMES; i++) {
        acc += 1.0 / (i + 1) / total;
        cdf[i] = acc;
    }
    cdf[N_NAMES - 1] = 1.0;
    double tag_cdf[N_TAGS], tag_total = 0, tag_acc = 0;
    for (int i = 0; i < N_TAGS; i++)
        tag_total += 1.0 / (i + 1);
    for (int i = 0; i < N_TAGS; i++) {
        tag_acc += 1.0 / (i + 1) / tag_total;
        tag_cdf[i] = tag_acc;
    }
    tag_cdf[N_TAGS - 1] = 1.0;

    /* r * SPAN_MS below must fit in 64 bits. */
    if (n_rows > 1000000000) {
        fprintf(stderr, "gen: at most 1e9 rows\n");
        return 2;
    }
    uint64_t n_traces = n_rows * 3 / 10;
    if (n_traces == 0)
        n_traces = 1;

    enum { CAP = 1 << 22 };
    out nd = {0}, csv = {0};
    if (nd_path) {
        nd.f = open_out(nd_path);
        nd.buf = malloc(CAP);
        nd.cap = CAP - 1024;
    }
    if (csv_path) {
        csv.f = open_out(csv_path);
        csv.buf = malloc(CAP);
        csv.cap = CAP - 1024;
        put_str(&csv, "name,value,label,data_type,ts,source,environment,model,"
                      "prompt_version,trace_id,tags,feature,customer_tier\n");
    }
    if ((nd.f && !nd.buf) || (csv.f && !csv.buf)) {
        fprintf(stderr, "gen: out of memory\n");
        return 1;
    }

    for (uint64_t r = 0; r < n_rows; r++) {
        /* Name: binary search of the Zipf table. */
        double u = next_unit();
        int lo = 0, hi = N_NAMES - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (u < cdf[mid])
                hi = mid;
            else
                lo = mid + 1;
        }
        int name = lo;
        enum kind kind = name_kind(name);

        /* Time: arrival order plus jitter, kept inside the 90 days. */
        int64_t ts = START_MS + (int64_t)(r * (uint64_t)SPAN_MS / n_rows) +
                     (int64_t)next_below(2 * JITTER_MS + 1) - JITTER_MS;
        if (ts < START_MS)
            ts = START_MS;
        if (ts >= END_MS)
            ts = END_MS - 1;

        /* Trace and the dimensions that belong to it. */
        uint64_t trace;
        if (local) {
            /* Among the LOCAL_SPAN traces around the row's place. */
            uint64_t mid = r * n_traces / n_rows;
            uint64_t lo = mid > LOCAL_SPAN / 2 ? mid - LOCAL_SPAN / 2 : 0;
            trace = lo + next_below(LOCAL_SPAN);
            if (trace >= n_traces)
                trace = n_traces - 1;
        } else {
            trace = next_below(n_traces);
        }
        uint64_t th = mix64(trace ^ 0x7ace7ace7aceULL);
        int model = (int)(th % 8);
        int prompt = (int)((th >> 8) % 20);
        int e10 = (int)((th >> 16) % 10);
        int env = e10 < 7 ? 0 : e10 < 9 ? 1 : 2;
        uint64_t t_hi = mix64(trace ^ 0x1111111111111111ULL);
        uint64_t t_lo = mix64(trace ^ 0x2222222222222222ULL);
        int tags[3], feature, tier;
        int n_tags = trace_attrs(trace, tag_cdf, tags, &feature, &tier);

        int s100 = (int)next_below(100);
        int source = s100 < 15 ? 0 : s100 < 75 ? 1 : 2;

        /* Value. */
        double q = quality(name, model, prompt);
        double noise = next_unit() + next_unit() - 1.0; /* triangular [-1,1) */
        double value = 0;
        const char *label = NULL;
        switch (kind) {
        case K_NUM01:
            value = q + 0.35 * noise;
            value = value < 0 ? 0 : value > 1 ? 1 : value;
            break;
        case K_INT5: {
            double g = 1 + 4 * (q + 0.3 * noise);
            int gi = (int)(g + 0.5);
            value = gi < 1 ? 1 : gi > 5 ? 5 : gi;
            break;
        }
        case K_BOOL:
            value = next_unit() < q ? 1 : 0;
            break;
        case K_CAT: {
            double c = q + 0.3 * noise;
            label = LABELS[name % 2][c > 0.6 ? 0 : c > 0.4 ? 1 : 2];
            break;
        }
        }

        if (nd.f) {
            out_reserve(&nd, 512);
            if (ids) {
                put_str(&nd, "{\"id\":\"");
                uint64_t a = splitmix64(&id_seed), b = splitmix64(&id_seed);
                put_uuid(&nd, a, b, ids, START_MS + (int64_t)(r * (uint64_t)SPAN_MS / n_rows));
                put_str(&nd, "\",\"name\":\"");
            } else {
                put_str(&nd, "{\"name\":\"");
            }
            put_str(&nd, NAMES[name]);
            put_str(&nd, "\",\"value\":");
            if (kind == K_CAT) {
                put_ch(&nd, '"');
                put_str(&nd, label);
                put_ch(&nd, '"');
            } else if (kind == K_BOOL) {
                put_str(&nd, value != 0 ? "true" : "false");
            } else if (kind == K_INT5) {
                put_i64(&nd, (int64_t)value);
            } else {
                put_f64(&nd, value);
            }
            put_str(&nd, ",\"trace_id\":\"");
            put_hex64(&nd, t_hi);
            put_hex64(&nd, t_lo);
            put_str(&nd, "\",\"timestamp\":");
            if (r & 1) {
                put_ch(&nd, '"');
                put_rfc3339(&nd, ts);
                put_ch(&nd, '"');
            } else {
                put_i64(&nd, ts);
            }
            put_str(&nd, ",\"source\":\"");
            put_str(&nd, SOURCES[source]);
            put_str(&nd, "\",\"environment\":\"");
            put_str(&nd, ENVS[env]);
            put_str(&nd, "\",\"model\":\"");
            put_str(&nd, MODELS[model]);
            put_str(&nd, "\",\"prompt_version\":\"v");
            put_pad(&nd, prompt + 1, 2);
            put_ch(&nd, '"');
            if (n_tags) {
                put_str(&nd, ",\"tags\":[");
                for (int j = 0; j < n_tags; j++) {
                    put_str(&nd, j ? ",\"" : "\"");
                    put_str(&nd, TAGS[tags[j]]);
                    put_ch(&nd, '"');
                }
                put_ch(&nd, ']');
            }
            put_str(&nd, ",\"properties\":{\"feature\":\"");
            put_str(&nd, FEATURES[feature]);
            put_str(&nd, "\",\"customer_tier\":\"");
            put_str(&nd, TIERS[tier]);
            put_str(&nd, "\"}}\n");
        }
        if (csv.f) {
            out_reserve(&csv, 512);
            put_str(&csv, NAMES[name]);
            put_ch(&csv, ',');
            if (kind == K_NUM01)
                put_f64(&csv, value);
            else if (kind != K_CAT)
                put_i64(&csv, (int64_t)value);
            put_ch(&csv, ',');
            if (label)
                put_str(&csv, label);
            put_ch(&csv, ',');
            put_str(&csv, DATA_TYPE[kind]);
            put_ch(&csv, ',');
            put_i64(&csv, ts);
            put_ch(&csv, ',');
            put_str(&csv, SOURCES[source]);
            put_ch(&csv, ',');
            put_str(&csv, ENVS[env]);
            put_ch(&csv, ',');
            put_str(&csv, MODELS[model]);
            put_str(&csv, ",v");
            put_pad(&csv, prompt + 1, 2);
            put_ch(&csv, ',');
            put_hex64(&csv, t_hi);
            put_hex64(&csv, t_lo);
            /* Tags joined by '|' (empty: none), which duckdb_bench.mjs
             * splits into a VARCHAR[] column at load. */
            put_ch(&csv, ',');
            for (int j = 0; j < n_tags; j++) {
                if (j) put_ch(&csv, '|');
                put_str(&csv, TAGS[tags[j]]);
            }
            put_ch(&csv, ',');
            put_str(&csv, FEATURES[feature]);
            put_ch(&csv, ',');
            put_str(&csv, TIERS[tier]);
            put_ch(&csv, '\n');
        }
    }
    out_flush(&nd);
    out_flush(&csv);
    int rc = 0;
    if (nd.f && nd.f != stdout && fclose(nd.f) != 0)
        rc = 1;
    if (csv.f && csv.f != stdout && fclose(csv.f) != 0)
        rc = 1;
    if (nd.f == stdout && fflush(stdout) != 0)
        rc = 1;
    free(nd.buf);
    free(csv.buf);
    if (rc)
        perror("gen: close");
    return rc;
}
