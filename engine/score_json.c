/* Score objects in: the ingest hot path, and the only file that includes
 * <cjson/cJSON.h>.
 *
 * Every ingested score is parsed and validated here, field by field, with
 * messages that name the field and the value. The parser is cJSON rather
 * than jansson (which the rest of the engine uses) for one measured
 * reason: on the benchmark's score lines jansson parses 65 MB/s
 * (3.3 us a score, over half of all ingest time) and cJSON 321 MB/s
 * (0.67 us). What cJSON leaves to its caller is done here: the text must
 * be UTF-8; a string may hold neither a raw control byte (0x00-0x1f: not
 * JSON, RFC 8259 section 7; cJSON keeps them, and cuts the string at a raw
 * NUL, so "victim\0x" became the id "victim") nor the escape "\u0000"
 * (which cJSON would cut a string at too); duplicate field names are
 * refused while fields are read. The string rules are docs/input.md.
 * The check costs one word-at-a-time pass fused with the UTF-8 check: a
 * line with no byte below 0x20 and no backslash (nearly every score line)
 * is never scanned again. Only the others are walked byte by byte, to name
 * the field and, in an array body, the element, which alone is refused.
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#ifdef __SSE2__
#include <emmintrin.h> /* baseline on x86-64: no ISA flag needed */
#endif

/* cJSON allocates every node and string with malloc and frees each one in
 * cJSON_Delete: on the benchmark's score lines malloc and free were 30% of
 * a parse worker's time. Each thread parses into a bump arena instead,
 * reset when the next document starts (every tree is deleted before its
 * thread parses again); what does not fit falls back to malloc, and free
 * ignores arena memory. The hooks are process-wide, and this is the only
 * file that uses cJSON. */
#define ARENA_BYTES (1u << 20)

typedef struct arena {
    char *p;
    size_t used;
    size_t spilled; /* blocks from malloc since the reset */
} arena;

static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static _Thread_local arena *arena_mine;

/* At thread exit (the key's destructor runs in the exiting thread). */
static void arena_drop(void *a)
{
    if (!a) return;
    arena_mine = NULL;
    free(((arena *)a)->p);
    free(a);
}

/* The thread's arena is found through the thread-local arena_mine; the
 * key only frees it when the thread ends. pthread_getspecific on every
 * node was 5% of a parse worker's samples (perf, 1M UUIDv4 lines). */
static arena *arena_get(void)
{
    arena *a = arena_mine;
    if (a) return a;
    a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->p = malloc(ARENA_BYTES);
    if (!a->p || pthread_setspecific(arena_key, a)) {
        free(a->p);
        free(a);
        return NULL;
    }
    return arena_mine = a;
}

/* Each block carries a 16-byte tag saying where it came from, so a free
 * is right whichever thread makes it. */
#define TAG 16u
enum { FROM_ARENA = 0x41, FROM_MALLOC = 0x4d };

static void *arena_malloc(size_t n)
{
    arena *a = arena_get();
    size_t want = (n + TAG + 15) & ~(size_t)15;
    char *r;
    if (a && want <= ARENA_BYTES - a->used) {
        r = a->p + a->used;
        a->used += want;
        r[0] = FROM_ARENA;
    } else {
        if (!(r = malloc(n + TAG))) return NULL;
        r[0] = FROM_MALLOC;
        if (a) a->spilled++;
    }
    return r + TAG;
}

static void arena_free(void *p)
{
    if (!p) return;
    char *r = (char *)p - TAG;
    if (r[0] == FROM_MALLOC) free(r);
}

static void arena_init(void)
{
    pthread_key_create(&arena_key, arena_drop);
    cJSON_Hooks h = {arena_malloc, arena_free};
    cJSON_InitHooks(&h);
}

/* Before a document is parsed: this thread's earlier trees are gone. */
static void arena_reset(void)
{
    pthread_once(&arena_once, arena_init);
    if (arena_mine) arena_mine->used = arena_mine->spilled = 0;
}

/* Free the tree of the document this thread parsed last. When every block
 * since the reset came from the arena, the next reset takes the whole
 * tree back at once: cJSON_Delete's walk, calling a free that does
 * nothing on each node, was 2.7% of a 1M-score ingest (perf). */
static void tree_free(cJSON *o)
{
    if (!o || (arena_mine && arena_mine->spilled == 0)) return;
    cJSON_Delete(o);
}

/* A short rendering of a JSON value for error messages. */
static void show(const cJSON *v, char *out, size_t n)
{
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        snprintf(out, n, "a value");
        return;
    }
    if (strlen(s) > 60) memcpy(s + 57, "...", 4);
    snprintf(out, n, "%s", s);
    cJSON_free(s);
}

static const char *shown_of(const cJSON *v, char *buf)
{
    show(v, buf, 80);
    return buf;
}

/* RFC 3629 UTF-8 (no overlongs, no surrogates); returns the offset of the
 * first bad byte, or len. *special is set when the text holds a byte below
 * 0x20 or a backslash: only such a text can break the string rules, and
 * only then does sdb__json_strings_scan() walk it. */
#define ONES 0x0101010101010101ull
#define HIGH 0x8080808080808080ull
static size_t utf8_check(const unsigned char *s, size_t len, int *special)
{
    size_t i = 0;
    uint64_t sp = 0;
#ifdef __SSE2__
    __m128i ctl = _mm_setzero_si128();
    const __m128i x20 = _mm_set1_epi8(0x20);
#endif
    while (i < len) {
        /* Score lines are nearly all ASCII: sixteen bytes at a time where
         * SSE2 is (every x86-64), else eight. In a word without high bits,
         * (w - 0x20..) & ~w & 0x80.. is non-zero exactly when some byte is
         * below 0x20; a signed compare with 0x20 says the same of 16 bytes.
         * With both checks in one pass, parsing a bench/gen score line
         * takes 0.2% fewer instructions than the 8-byte UTF-8 check and
         * the memchr for \u0000 did before (callgrind, 20k lines). */
#ifdef __SSE2__
        if (i + 16 <= len) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            if (!_mm_movemask_epi8(v)) {
                ctl = _mm_or_si128(ctl, _mm_cmplt_epi8(v, x20));
                i += 16;
                continue;
            }
        }
#endif
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & HIGH)) {
                sp |= (w - ONES * 0x20) & ~w;
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c < 0x20) sp = HIGH;
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07;
        else return i;
        if (i + n >= len) return i; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n + 1;
    }
    /* memchr (vectorised in libc) finds a backslash faster than one more
     * test per word here: most score lines have none. */
#ifdef __SSE2__
    if (_mm_movemask_epi8(ctl)) sp = HIGH;
#endif
    *special = (sp & HIGH) != 0 || memchr(s, '\\', len) != NULL;
    return len;
}

/* Line and column (1-based) of byte offset `at`, for parse errors. */
static void position(const char *text, size_t at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* ------------------------------------------------------- string rules */

/* The containers open around a byte, outermost first. Only the first
 * JDEPTH are named in messages; deeper ones are still counted. */
#define JDEPTH 16
typedef struct jframe {
    char obj;      /* 1: object, 0: array */
    char want_key; /* object: the next string is a field name */
    size_t key_at, key_len; /* object: the current field name, raw */
    long idx;      /* array: the current element */
} jframe;

typedef struct jscan {
    const char *t;
    size_t len;
    jframe st[JDEPTH];
    size_t depth; /* containers open (may exceed JDEPTH) */
    long line;
    size_t line_at; /* offset where the current line starts */
    int multi;      /* the text has more than one line */
    const char *items_under; /* see sdb__json_strings_scan */
    sdb__jbads *bads;
    char *err;
    size_t errlen;
} jscan;

/* The element of the item array that holds the innermost container, or
 * -1 when there is none (no item array asked for, or outside it). */
static long item_of(const jscan *j, size_t *first_frame)
{
    *first_frame = 0;
    if (!j->items_under) return -1;
    size_t d = j->items_under[0] ? 1 : 0;
    if (j->depth <= d || d >= JDEPTH || j->st[d].obj) return -1;
    if (d) {
        const jframe *root = &j->st[0];
        size_t kl = strlen(j->items_under);
        if (!root->obj || root->key_len != kl || memcmp(j->t + root->key_at, j->items_under, kl))
            return -1;
    }
    *first_frame = d + 1;
    return j->st[d].idx;
}

static int bads_add(sdb__jbads *l, long item, const char *msg)
{
    if (l->n && l->item[l->n - 1] == item) return SDB_OK; /* one message per element */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        long *it = realloc(l->item, cap * sizeof *it);
        if (!it) return SDB_ENOMEM;
        l->item = it;
        char **m = realloc(l->msg, cap * sizeof *m);
        if (!m) return SDB_ENOMEM;
        l->msg = m;
        l->cap = cap;
    }
    if (!(l->msg[l->n] = strdup(msg))) return SDB_ENOMEM;
    l->item[l->n++] = item;
    return SDB_OK;
}

void sdb__jbads_free(sdb__jbads *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->msg[i]);
    free(l->msg);
    free(l->item);
    memset(l, 0, sizeof *l);
}

const char *sdb__jbads_msg(const sdb__jbads *l, long item)
{
    /* Entries are in text order, so in element order: bisect. */
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->item[mid] < item) lo = mid + 1;
        else hi = mid;
    }
    return lo < l->n && l->item[lo] == item ? l->msg[lo] : NULL;
}

/* A string breaks the rules at offset `at`: name where, then refuse the
 * element (SDB_OK: go on) or the whole text (SDB_EINVAL, err set). in_key:
 * the bad byte is inside a field name of the innermost object. */
static int jreport(jscan *j, size_t at, int in_key, const char *what, const char *why)
{
    char path[512];
    size_t pl = 0, first, top = j->depth < JDEPTH ? j->depth : JDEPTH;
    long item = item_of(j, &first);
    if (in_key && top) top--; /* that object's field name is the one being read */
    path[0] = 0;
    for (size_t f = first; f < top && pl + 128 < sizeof path; f++) {
        const jframe *fr = &j->st[f];
        if (fr->obj) {
            /* The field name as written (escapes and all), a control byte
             * in it shown as '?' so that the message stays printable. */
            if (pl) path[pl++] = '.';
            size_t kl = fr->key_len > 100 ? 100 : fr->key_len;
            while (kl && kl < fr->key_len && ((unsigned char)j->t[fr->key_at + kl] & 0xC0) == 0x80)
                kl--; /* never cut a UTF-8 sequence */
            for (size_t x = 0; x < kl; x++) {
                unsigned char ch = (unsigned char)j->t[fr->key_at + x];
                path[pl++] = ch < 0x20 ? '?' : (char)ch;
            }
            path[pl] = 0;
            continue;
        }
        int n = snprintf(path + pl, sizeof path - pl, "[%ld]", fr->idx);
        if (n < 0) break;
        pl += (size_t)n < sizeof path - pl ? (size_t)n : sizeof path - pl - 1;
    }
    if (j->depth > JDEPTH && pl < sizeof path - 5) strcat(path, "...");
    char where[48];
    size_t col = at - j->line_at + 1;
    if (j->multi)
        snprintf(where, sizeof where, "at line %ld column %zu", j->line, col);
    else
        snprintf(where, sizeof where, "at column %zu", col);
    char msg[512];
    if (in_key && path[0])
        snprintf(msg, sizeof msg, "a field name in \"%.300s\": %s %s%s", path, what, where, why);
    else if (in_key)
        snprintf(msg, sizeof msg, "a field name: %s %s%s", what, where, why);
    else if (path[0])
        snprintf(msg, sizeof msg, "field \"%.300s\": %s %s%s", path, what, where, why);
    else
        snprintf(msg, sizeof msg, "a string: %s %s%s", what, where, why);
    if (item >= 0 && j->bads) return bads_add(j->bads, item, msg);
    sdb__errf(j->err, j->errlen, "%s", msg);
    return SDB_EINVAL;
}

/* The first offset at or after i of a quote, a backslash or a byte below
 * 0x20: what ends a run of plain string bytes (len when none). Sixteen
 * bytes at a time with SSE2: an array body of score objects, one a line
 * (so every such body is scanned), is mostly string bytes. Walked one by
 * one they made the scan 12.4% of the instructions of adding the body;
 * this way 6.4%, the body 7.5% above its cost before the string rules
 * (callgrind, 20k bench/gen lines in one array: 437e6 vs 407e6). */
static size_t string_stop(const char *t, size_t i, size_t len)
{
#ifdef __SSE2__
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), c1f = _mm_set1_epi8(0x1f);
    while (i + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(t + i));
        /* max(v, 0x1f) == 0x1f exactly when v <= 0x1f, unsigned. */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)),
                                 _mm_cmpeq_epi8(_mm_max_epu8(v, c1f), c1f));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask) return i + (size_t)__builtin_ctz(mask);
        i += 16;
    }
#endif
    for (; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '"' || c == '\\' || c < 0x20) return i;
    }
    return len;
}

int sdb__json_strings_scan(const char *text, size_t len, const char *items_under, char *blank,
                           sdb__jbads *bads, char *err, size_t errlen)
{
    jscan j = {.t = text, .len = len, .line = 1, .items_under = items_under,
               .bads = items_under ? bads : NULL, .err = err, .errlen = errlen};
    j.multi = memchr(text, '\n', len) != NULL;
    char what[96];
    int rc;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"') {
            jframe *top = j.depth && j.depth <= JDEPTH ? &j.st[j.depth - 1] : NULL;
            int is_key = top && top->obj && top->want_key;
            size_t start = ++i;
            int reported = 0;
            while ((i = string_stop(text, i, len)) < len && text[i] != '"') {
                c = (unsigned char)text[i];
                if (c == '\\') {
                    if (len - i >= 6 && memcmp(text + i, "\\u0000", 6) == 0) {
                        if (blank) memcpy(blank + i + 2, "0020", 4);
                        if (!reported++ &&
                            (rc = jreport(&j, i, is_key, "the escape \\u0000 (NUL)",
                                          " (no string scoredb keeps may hold NUL)")))
                            return rc;
                    }
                    i += 2; /* whatever is escaped, a quote or a backslash included */
                    continue;
                }
                if (c < 0x20) {
                    if (blank) blank[i] = ' ';
                    if (!reported++) {
                        snprintf(what, sizeof what, "raw control byte 0x%02x", c);
                        if ((rc = jreport(&j, i, is_key, what,
                                          " (not JSON: a string holds control characters "
                                          "only as escapes, RFC 8259 section 7)")))
                            return rc;
                    }
                }
                i++;
            }
            if (is_key) {
                top->key_at = start;
                top->key_len = (i < len ? i : len) - start;
                top->want_key = 0;
            }
            i++;
            continue;
        }
        switch (c) {
        case '{':
        case '[':
            if (j.depth < JDEPTH) {
                jframe *f = &j.st[j.depth];
                f->obj = c == '{';
                f->want_key = c == '{';
                f->key_at = f->key_len = 0;
                f->idx = 0;
            }
            j.depth++;
            break;
        case '}':
        case ']':
            if (j.depth) j.depth--;
            break;
        case ',':
            if (j.depth && j.depth <= JDEPTH) {
                jframe *f = &j.st[j.depth - 1];
                if (f->obj) f->want_key = 1;
                else f->idx++;
            }
            break;
        case '\n':
            j.line++;
            j.line_at = i + 1;
            break;
        default:
            /* cJSON takes every byte up to 0x20 for white space; JSON
             * takes only these four (RFC 8259 section 2). */
            if (c < 0x20 && c != '\t' && c != '\r') {
                sdb__errf(err, errlen,
                          "invalid JSON at line %ld column %zu: raw control byte 0x%02x "
                          "outside a string", j.line, i - j.line_at + 1, c);
                return SDB_EINVAL;
            }
        }
        i++;
    }
    return SDB_OK;
}

int sdb__json_strings_check(const char *text, size_t len, char *err, size_t errlen)
{
    return sdb__json_strings_scan(text, len, NULL, NULL, NULL, err, errlen);
}

int sdb__json_strings_blank(const char *text, size_t len, const char *items_under,
                            char **out_text, sdb__jbads *bads, char *err, size_t errlen)
{
    *out_text = NULL;
    memset(bads, 0, sizeof *bads);
    char *copy = malloc(len ? len : 1);
    if (!copy) return SDB_ENOMEM;
    if (len) memcpy(copy, text, len);
    int rc = sdb__json_strings_scan(text, len, items_under, copy, bads, err, errlen);
    if (rc || !bads->n) {
        free(copy);
        if (rc) sdb__jbads_free(bads);
        return rc;
    }
    *out_text = copy;
    return SDB_OK;
}

/* Parse `text` into a cJSON tree (caller deletes), refusing what cJSON
 * would accept but JSON or this store does not. With `bads`, a string
 * that breaks the rules inside an element of the root array (or of the
 * "scores" array of a root object) is listed there for the caller to
 * refuse that element alone; anything else that breaks them refuses the
 * whole text. */
static int load(const char *text, size_t len, cJSON **out, sdb__jbads *bads, char *err,
                size_t errlen)
{
    *out = NULL;
    int line, col, special = 0;
    size_t bad = utf8_check((const unsigned char *)text, len, &special);
    if (bad < len) {
        position(text, bad, &line, &col);
        sdb__errf(err, errlen, "invalid JSON at line %d column %d: not UTF-8", line, col);
        return SDB_EINVAL;
    }
    sdb__jbads l = {0};
    if (special) {
        const char *under = NULL;
        if (bads) {
            /* The elements: of a root array, or of {"scores": [...]}. */
            size_t k = 0;
            while (k < len && (text[k] == ' ' || text[k] == '\t' || text[k] == '\r' ||
                               text[k] == '\n'))
                k++;
            under = k < len && text[k] == '{' ? "scores" : "";
        }
        int rc = sdb__json_strings_scan(text, len, under, NULL, &l, err, errlen);
        if (rc) {
            sdb__jbads_free(&l);
            return rc;
        }
    }
    const char *end = NULL;
    arena_reset();
    cJSON *o = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!o) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        position(text, at, &line, &col);
        sdb__errf(err, errlen, "invalid JSON at line %d column %d", line, col);
        sdb__jbads_free(&l);
        return SDB_EINVAL;
    }
    while (end && end < text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end && end < text + len) {
        position(text, (size_t)(end - text), &line, &col);
        sdb__errf(err, errlen, "invalid JSON at line %d column %d: text after the value", line,
                  col);
        tree_free(o);
        sdb__jbads_free(&l);
        return SDB_EINVAL;
    }
    if (bads) *bads = l;
    else sdb__jbads_free(&l);
    *out = o;
    return SDB_OK;
}

/* Field names of a score object, found with at most a few comparisons
 * (a chain of strcmp per field cost 12% of ingest). */
enum {
    F_NAME,
    F_VALUE,
    F_DATA_TYPE,
    F_ID,
    F_TRACE_ID,
    F_OBSERVATION_ID,
    F_SESSION_ID,
    F_DATASET_RUN_ID,
    F_CONFIG_ID,
    F_COMMENT,
    F_TIMESTAMP,
    F_SOURCE,
    F_TAGS,
    F_PROPERTIES,
    F_METADATA,
    F_DIM0 /* + SDB_DIM_*: environment, model, ... in column order */
};

static int field_of(const char *k)
{
#define IS(s, f) if (strcmp(k, s) == 0) return f
    switch (k[0]) {
    case 'a': IS("author", F_DIM0 + SDB_DIM_AUTHOR); break;
    case 'c': IS("comment", F_COMMENT); IS("config_id", F_CONFIG_ID); break;
    case 'd': IS("data_type", F_DATA_TYPE); IS("dataset_run_id", F_DATASET_RUN_ID); break;
    case 'e': IS("environment", F_DIM0 + SDB_DIM_ENVIRONMENT); break;
    case 'i': IS("id", F_ID); break;
    case 'm': IS("model", F_DIM0 + SDB_DIM_MODEL); IS("metadata", F_METADATA); break;
    case 'n': IS("name", F_NAME); break;
    case 'o': IS("observation_id", F_OBSERVATION_ID); break;
    case 'p': IS("prompt_version", F_DIM0 + SDB_DIM_PROMPT_VERSION); IS("properties", F_PROPERTIES); break;
    case 's': IS("session_id", F_SESSION_ID); IS("source", F_SOURCE); break;
    case 't':
        IS("trace_id", F_TRACE_ID); IS("timestamp", F_TIMESTAMP); IS("tags", F_TAGS);
        IS("trace_name", F_DIM0 + SDB_DIM_TRACE_NAME);
        break;
    case 'u': IS("user_id", F_DIM0 + SDB_DIM_USER_ID); break;
    case 'v': IS("value", F_VALUE); break;
    }
#undef IS
    return -1;
}

/* A time: RFC 3339 string or integer epoch ms. */
static int get_time(const char *field, const cJSON *v, int64_t *out, char *err, size_t errlen)
{
    char shown[80];
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 9e15) {
            *out = (int64_t)d;
            return sdb__time_check(field, *out, err, errlen);
        }
    }
    if (cJSON_IsString(v) &&
        sdb_time_parse(v->valuestring, strlen(v->valuestring), out) == SDB_OK)
        return sdb__time_check(field, *out, err, errlen);
    sdb__errf(err, errlen,
              "field \"%s\": expected an RFC 3339 time or integer epoch milliseconds, got %s",
              field, shown_of(v, shown));
    return SDB_EINVAL;
}

/* --------------------------------------------------------------- scores */

typedef struct score_parse {
    sdb_batch *b;
    char *err;
    size_t errlen;
} score_parse;

/* An optional string field: null or absent leaves *out absent. */
static int opt_str(score_parse *c, const char *field, const cJSON *v, size_t max,
                   bool nonempty, sdb__str *out)
{
    char shown[80];
    if (!v || cJSON_IsNull(v)) return SDB_OK;
    if (!cJSON_IsString(v)) {
        show(v, shown, sizeof shown);
        sdb__errf(c->err, c->errlen, "field \"%s\": expected a string, got %s", field, shown);
        return SDB_EINVAL;
    }
    size_t len = strlen(v->valuestring);
    if (max && len > max) {
        sdb__errf(c->err, c->errlen, "field \"%s\": longer than %zu bytes (%zu)", field, max,
                  len);
        return SDB_EINVAL;
    }
    if (nonempty && len == 0) {
        sdb__errf(c->err, c->errlen, "field \"%s\": must not be empty", field);
        return SDB_EINVAL;
    }
    return sdb__batch_str(c->b, v->valuestring, len, out);
}

static int enum_of(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static int parse_value(score_parse *c, const cJSON *v, const cJSON *dt, sdb__score *sc)
{
    char shown[80];
    int type = -1;
    if (dt && !cJSON_IsNull(dt)) {
        type = cJSON_IsString(dt) ? enum_of(dt->valuestring, sdb__type_names, SDB_N_TYPES)
                                  : -1;
        if (type < 0) {
            show(dt, shown, sizeof shown);
            sdb__errf(c->err, c->errlen,
                      "field \"data_type\": expected NUMERIC, BOOLEAN or CATEGORICAL, got %s",
                      shown);
            return SDB_EINVAL;
        }
    }
    if (!v) {
        sdb__errf(c->err, c->errlen, "field \"value\": required");
        return SDB_EINVAL;
    }
    /* The value is only rendered for a message: formatting a double on
     * every accepted row cost more than the rest of the validation. */
    if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if (!isfinite(x)) {
            sdb__errf(c->err, c->errlen,
                      "field \"value\": not a finite number (beyond the range of a double)");
            return SDB_EINVAL;
        }
        if (type == SDB_CATEGORICAL) {
            sdb__errf(c->err, c->errlen,
                      "field \"value\": data_type CATEGORICAL takes a string, got %s", shown_of(v, shown));
            return SDB_EINVAL;
        }
        if (type == SDB_BOOLEAN && x != 0 && x != 1) {
            sdb__errf(c->err, c->errlen,
                      "field \"value\": data_type BOOLEAN takes true, false, 0 or 1, got %s",
                      shown_of(v, shown));
            return SDB_EINVAL;
        }
        sc->type = type < 0 ? SDB_NUMERIC : (uint8_t)type;
        sc->value = x == 0 ? 0.0 : x;
        return SDB_OK;
    }
    if (cJSON_IsBool(v)) {
        if (type == SDB_NUMERIC || type == SDB_CATEGORICAL) {
            sdb__errf(c->err, c->errlen, "field \"value\": data_type %s takes %s, got %s",
                      sdb__type_names[type], type == SDB_NUMERIC ? "a number" : "a string",
                      shown_of(v, shown));
            return SDB_EINVAL;
        }
        sc->type = SDB_BOOLEAN;
        sc->value = cJSON_IsTrue(v) ? 1.0 : 0.0;
        return SDB_OK;
    }
    if (cJSON_IsString(v)) {
        if (type == SDB_NUMERIC || type == SDB_BOOLEAN) {
            sdb__errf(c->err, c->errlen, "field \"value\": data_type %s takes %s, got %s",
                      sdb__type_names[type],
                      type == SDB_NUMERIC ? "a number" : "true, false, 0 or 1", shown_of(v, shown));
            return SDB_EINVAL;
        }
        size_t len = strlen(v->valuestring);
        if (len == 0 || len > SDB_MAX_VALUE) {
            sdb__errf(c->err, c->errlen,
                      "field \"value\": a category label must be 1 to %u bytes, got %zu",
                      SDB_MAX_VALUE, len);
            return SDB_EINVAL;
        }
        sc->type = SDB_CATEGORICAL;
        sc->value = 0;
        return sdb__batch_str(c->b, v->valuestring, len, &sc->label);
    }
    sdb__errf(c->err, c->errlen,
              "field \"value\": expected a finite number, boolean or string, got %s", shown_of(v, shown));
    return SDB_EINVAL;
}

static int score_from_obj(sdb_batch *b, const cJSON *o, sdb__score *sc, char *err, size_t errlen)
{
    int rc = SDB_OK;
    score_parse c = {b, err, errlen};
    char shown[80];
    const cJSON *v, *value = NULL, *dt = NULL;
    uint32_t seen = 0;
    cJSON_ArrayForEach(v, o)
    {
        const char *key = v->string;
        int f = field_of(key);
        if (f >= 0) {
            if (seen & (1u << f)) {
                sdb__errf(err, errlen, "invalid JSON: field \"%.200s\" appears twice", key);
                rc = SDB_EINVAL;
                break;
            }
            seen |= 1u << f;
        }
        if (f == F_NAME) {
            if (!cJSON_IsString(v)) {
                show(v, shown, sizeof shown);
                sdb__errf(err, errlen, "field \"name\": expected a string, got %s", shown);
                rc = SDB_EINVAL;
            } else {
                size_t n = strlen(v->valuestring);
                if (n < 1 || n > SDB_MAX_STR) {
                    sdb__errf(err, errlen, "field \"name\": must be 1 to %u bytes, got %zu",
                              SDB_MAX_STR, n);
                    rc = SDB_EINVAL;
                } else {
                    rc = sdb__batch_str(b, v->valuestring, n, &sc->name);
                }
            }
        } else if (f == F_VALUE) {
            value = v;
        } else if (f == F_DATA_TYPE) {
            dt = v;
        } else if (f == F_ID) {
            rc = opt_str(&c, key, v, SDB_MAX_STR, true, &sc->id);
        } else if (f == F_TRACE_ID) {
            rc = opt_str(&c, key, v, SDB_MAX_STR, true, &sc->trace_id);
        } else if (f == F_OBSERVATION_ID) {
            rc = opt_str(&c, key, v, SDB_MAX_STR, true, &sc->observation_id);
        } else if (f == F_SESSION_ID) {
            rc = opt_str(&c, key, v, SDB_MAX_STR, true, &sc->session_id);
        } else if (f == F_DATASET_RUN_ID) {
            rc = opt_str(&c, key, v, SDB_MAX_STR, true, &sc->dataset_run_id);
        } else if (f == F_CONFIG_ID) {
            rc = opt_str(&c, key, v, SDB_MAX_VALUE, false, &sc->config_id);
        } else if (f == F_COMMENT) {
            rc = opt_str(&c, key, v, 1u << 20, false, &sc->comment);
        } else if (f == F_TIMESTAMP) {
            if (!cJSON_IsNull(v)) {
                rc = get_time("timestamp", v, &sc->ts, err, errlen);
                sc->has_ts = rc == SDB_OK;
            }
        } else if (f == F_SOURCE) {
            int s = cJSON_IsString(v) ? enum_of(v->valuestring, sdb__source_names,
                                                SDB_N_SOURCES)
                                      : -1;
            if (cJSON_IsNull(v)) s = SDB_SRC_API;
            if (s < 0) {
                show(v, shown, sizeof shown);
                sdb__errf(err, errlen,
                          "field \"source\": expected API, EVAL or ANNOTATION, got %s", shown);
                rc = SDB_EINVAL;
            } else {
                sc->source = (uint8_t)s;
            }
        } else if (f == F_TAGS) {
            if (cJSON_IsNull(v)) continue;
            if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 1000) {
                show(v, shown, sizeof shown);
                sdb__errf(err, errlen, "field \"tags\": expected an array of at most 1000 strings, got %s",
                          shown);
                rc = SDB_EINVAL;
                break;
            }
            sc->n_tags = (uint32_t)cJSON_GetArraySize(v);
            sc->tags = sdb__batch_alloc(b, sizeof(sdb__str) * (sc->n_tags + 1));
            if (!sc->tags) { rc = SDB_ENOMEM; break; }
            uint32_t i = 0;
            const cJSON *t;
            cJSON_ArrayForEach(t, v)
            {
                if (rc) break;
                if (!cJSON_IsString(t) || strlen(t->valuestring) > SDB_MAX_VALUE) {
                    show(t, shown, sizeof shown);
                    sdb__errf(err, errlen,
                              "field \"tags[%u]\": expected a string of at most %u bytes, got %s",
                              i, SDB_MAX_VALUE, shown);
                    rc = SDB_EINVAL;
                } else {
                    rc = sdb__batch_str(b, t->valuestring, strlen(t->valuestring),
                                        &sc->tags[i]);
                }
                i++;
            }
        } else if (f == F_PROPERTIES) {
            if (cJSON_IsNull(v)) continue;
            if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) > 1000) {
                show(v, shown, sizeof shown);
                sdb__errf(err, errlen,
                          "field \"properties\": expected an object of strings, got %s", shown);
                rc = SDB_EINVAL;
                break;
            }
            sc->props = sdb__batch_alloc(b, sizeof(sdb__str) * 2 * (cJSON_GetArraySize(v) + 1));
            if (!sc->props) { rc = SDB_ENOMEM; break; }
            const cJSON *pv;
            cJSON_ArrayForEach(pv, v)
            {
                const char *pk = pv->string;
                size_t kl = strlen(pk);
                if (!cJSON_IsString(pv) || strlen(pv->valuestring) > SDB_MAX_VALUE ||
                    kl > SDB_MAX_STR || kl == 0) {
                    show(pv, shown, sizeof shown);
                    sdb__errf(err, errlen,
                              "field \"properties.%.200s\": expected a string of at most %u "
                              "bytes under a key of 1 to %u bytes, got %s",
                              pk, SDB_MAX_VALUE, SDB_MAX_STR, shown);
                    rc = SDB_EINVAL;
                    break;
                }
                for (uint32_t k = 0; k < sc->n_props; k++)
                    if (sc->props[2 * k].len == kl && memcmp(sc->props[2 * k].p, pk, kl) == 0) {
                        sdb__errf(err, errlen,
                                  "invalid JSON: field \"properties.%.200s\" appears twice", pk);
                        rc = SDB_EINVAL;
                    }
                if (rc) break;
                uint32_t i = sc->n_props++;
                if ((rc = sdb__batch_str(b, pk, kl, &sc->props[2 * i])) ||
                    (rc = sdb__batch_str(b, pv->valuestring, strlen(pv->valuestring),
                                         &sc->props[2 * i + 1])))
                    break;
            }
        } else if (f == F_METADATA) {
            if (cJSON_IsNull(v)) continue;
            if (!cJSON_IsObject(v)) {
                show(v, shown, sizeof shown);
                sdb__errf(err, errlen, "field \"metadata\": expected an object, got %s", shown);
                rc = SDB_EINVAL;
                break;
            }
            char *m = cJSON_PrintUnformatted(v);
            if (!m) { rc = SDB_ENOMEM; break; }
            rc = sdb__batch_str(b, m, strlen(m), &sc->metadata);
            cJSON_free(m);
        } else {
            int d = f >= F_DIM0 ? f - F_DIM0 : -1;
            if (d < 0) {
                sdb__errf(err, errlen, "unknown field \"%.200s\"", key);
                rc = SDB_EINVAL;
            } else {
                rc = opt_str(&c, key, v, SDB_MAX_VALUE, false, &sc->dims[d]);
            }
        }
        if (rc) break;
    }
    if (rc == SDB_OK && !sc->name.p) {
        sdb__errf(err, errlen, "field \"name\": required");
        rc = SDB_EINVAL;
    }
    if (rc == SDB_OK) rc = parse_value(&c, value, dt, sc);
    if (rc == SDB_OK && !sc->trace_id.p && !sc->session_id.p && !sc->dataset_run_id.p) {
        sdb__errf(err, errlen,
                  "a score needs at least one of trace_id, session_id or dataset_run_id");
        rc = SDB_EINVAL;
    }
    if (rc == SDB_OK && sc->observation_id.p && !sc->trace_id.p) {
        sdb__errf(err, errlen, "field \"observation_id\": needs trace_id");
        rc = SDB_EINVAL;
    }
    if (rc == SDB_OK && !sc->dims[SDB_DIM_ENVIRONMENT].p)
        rc = sdb__batch_str(b, "default", 7, &sc->dims[SDB_DIM_ENVIRONMENT]);
    if (rc == SDB_OK && !sc->id.p) {
        rc = sdb__batch_gen_id(b, &sc->id);
        sc->id_generated = 1;
    }
    return rc;
}


int sdb__score_parse(sdb_batch *b, const char *text, size_t len, sdb__score *sc, char *err,
                     size_t errlen)
{
    cJSON *o;
    memset(sc, 0, sizeof *sc);
    int rc = load(text, len, &o, NULL, err, errlen);
    if (rc) return rc;
    if (!cJSON_IsObject(o)) {
        char shown[80];
        sdb__errf(err, errlen, "expected a JSON object, got %s", shown_of(o, shown));
        rc = SDB_EINVAL;
    } else {
        rc = score_from_obj(b, o, sc, err, errlen);
    }
    tree_free(o);
    return rc;
}

int sdb_batch_add_json(sdb_batch *b, const char *json, size_t len, char *err, size_t errlen)
{
    sdb__score sc;
    int rc = sdb__score_parse(b, json, len, &sc, err, errlen);
    if (rc) return rc;
    return sdb__batch_push(b, &sc);
}

int sdb__batch_add_array(sdb_batch *b, const char *body, size_t len, size_t max_items,
                         int (*on_error)(void *ctx, size_t index, const char *msg), void *ctx,
                         size_t *out_items, char *err, size_t errlen)
{
    *out_items = 0;
    cJSON *root;
    sdb__jbads bads = {0};
    int rc = load(body, len, &root, &bads, err, errlen);
    if (rc) return rc;
    const cJSON *arr = root;
    if (cJSON_IsObject(root)) {
        arr = cJSON_GetObjectItemCaseSensitive(root, "scores");
        if (!arr || cJSON_GetArraySize(root) != 1) {
            sdb__errf(err, errlen, "field \"scores\": expected an object with only a "
                                   "\"scores\" array, or a JSON array of scores");
            rc = SDB_EINVAL;
            goto done;
        }
    }
    if (!cJSON_IsArray(arr)) {
        sdb__errf(err, errlen, "%s: expected an array of score objects",
                  arr == root ? "body" : "field \"scores\"");
        rc = SDB_EINVAL;
        goto done;
    }
    if ((size_t)cJSON_GetArraySize(arr) > max_items) {
        rc = SDB_ELIMIT;
        goto done;
    }
    size_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr)
    {
        char msg[512] = "";
        sdb__score sc;
        memset(&sc, 0, sizeof sc);
        const char *bad = sdb__jbads_msg(&bads, (long)i);
        if (bad) {
            snprintf(msg, sizeof msg, "%s", bad);
        } else if (!cJSON_IsObject(v)) {
            snprintf(msg, sizeof msg, "expected a score object");
        } else {
            rc = score_from_obj(b, v, &sc, msg, sizeof msg);
            if (rc == SDB_OK) rc = sdb__batch_push(b, &sc);
            if (rc && rc != SDB_EINVAL) break;
        }
        if (msg[0] && (rc = on_error(ctx, i, msg))) break;
        rc = SDB_OK;
        i++;
    }
    *out_items = i;
done:
    tree_free(root);
    sdb__jbads_free(&bads);
    return rc;
}
