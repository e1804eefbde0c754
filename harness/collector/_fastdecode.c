/* The collector's hot path in C: a batch of flat JSON record values -> columns.
 *
 * `extract(values, keys, strings)`:
 *
 * - `values`: a list of bytes, each one JSON object (a record value of the SUT);
 * - `keys`: a 6-tuple of bytes or None, the top-level keys of symbol, type, seq, exchange,
 *   recv and produced (None: the core has no such field);
 * - `strings`: a dict used to intern the symbol and type strings (the same str object for
 *   the same text, so their hashes are computed once: the tracker looks them up per record).
 *
 * Returns (symbols, types, ints) with `ints` a bytearray of 4 * n int64 (native order): the
 * seq, exchange, recv and produced columns one after the other. An absent optional time is 0,
 * an absent type "". Or returns None: the batch holds something this code does not handle,
 * and the caller decodes it the general way (msgspec / orjson, which also count malformed
 * values). This code only accepts a subset of JSON, so None is the answer for:
 *
 * - anything that is not valid JSON (this is a validating parser, also of skipped values);
 * - any byte >= 0x80, any \u escape, numbers with more than 19 integer digits, exponents,
 *   nesting deeper than MAX_DEPTH, a duplicate mapped key;
 * - an escaped key (it may spell a mapped one);
 * - a mapped field of another JSON type (a null time, a float seq, an escaped symbol) or an
 *   integer outside int64;
 * - a missing symbol, seq or exchange time.
 *
 * `KafkaReader` (harness/collector/_kafkaread.c) reads batches from librdkafka and runs the same
 * decoder (`fd_record`) over the payloads in place.
 *
 * The differential tests (tests/unit/harness/collector/test_fastdecode.py) check that what
 * this code returns equals the msgspec path's columns, and that it never accepts a value the
 * general path calls malformed.
 */
#include "_fastdecode.h"

#define MAX_DEPTH 32
#define MAX_INT_DIGITS 19

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
} Cursor;

/* 1 for the bytes a string body may hold as they are: printable ASCII but '"' and '\\'. */
static unsigned char PLAIN[256];

static void init_plain(void) {
    for (int ch = 0x20; ch < 0x80; ch++) {
        PLAIN[ch] = ch != '"' && ch != '\\';
    }
}

static inline void skip_ws(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
        c->p++;
    }
}

/* A string at c->p (the opening quote); sets [*start, *stop) to its raw body. 0 if refused. */
static int scan_string(Cursor *c, const unsigned char **start, const unsigned char **stop,
                       int *escaped) {
    if (c->p >= c->end || *c->p != '"') {
        return 0;
    }
    c->p++;
    *start = c->p;
    *escaped = 0;
    while (c->p < c->end) {
        unsigned char ch;
        while (c->p < c->end && PLAIN[*c->p]) {
            c->p++;
        }
        if (c->p >= c->end) {
            return 0;
        }
        ch = *c->p;
        if (ch == '"') {
            *stop = c->p;
            c->p++;
            return 1;
        }
        if (ch < 0x20 || ch >= 0x80) {
            return 0;
        }
        if (ch == '\\') {
            if (c->p + 1 >= c->end) {
                return 0;
            }
            switch (c->p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                break;
            default:
                return 0; /* \u escapes and invalid escapes: the general path */
            }
            *escaped = 1;
            c->p += 2;
            continue;
        }
        c->p++;
    }
    return 0;
}

static int is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }

/* A JSON number of <= MAX_INT_DIGITS integer digits; *is_int and *value when it is an
 * integer in the int64 range (19 digits fit in a uint64 without overflow). */
static int scan_number(Cursor *c, int *is_int, int64_t *value) {
    int negative = 0, digits = 0;
    uint64_t v = 0;
    if (c->p < c->end && *c->p == '-') {
        negative = 1;
        c->p++;
    }
    if (c->p >= c->end || !is_digit(*c->p)) {
        return 0;
    }
    if (*c->p == '0') {
        c->p++;
        digits = 1;
        if (c->p < c->end && is_digit(*c->p)) {
            return 0; /* leading zero */
        }
    } else {
        while (c->p < c->end && is_digit(*c->p)) {
            if (++digits > MAX_INT_DIGITS) {
                return 0;
            }
            v = v * 10 + (*c->p - '0');
            c->p++;
        }
    }
    *is_int = 1;
    if (c->p < c->end && *c->p == '.') {
        *is_int = 0;
        c->p++;
        if (c->p >= c->end || !is_digit(*c->p)) {
            return 0;
        }
        while (c->p < c->end && is_digit(*c->p)) {
            c->p++;
        }
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        return 0; /* exponents: the general path */
    }
    if (*is_int) {
        if (v > (uint64_t)INT64_MAX + (uint64_t)negative) {
            *is_int = 0; /* outside int64: not an integer field's value */
        } else {
            *value = negative ? (int64_t)(0 - v) : (int64_t)v;
        }
    }
    return 1;
}

static int scan_literal(Cursor *c, const char *word, Py_ssize_t n) {
    if (c->end - c->p < n || memcmp(c->p, word, (size_t)n) != 0) {
        return 0;
    }
    c->p += n;
    return 1;
}

static int skip_value(Cursor *c, int depth);

static int skip_container(Cursor *c, int depth, unsigned char close, int keyed) {
    const unsigned char *start, *stop;
    int escaped;
    if (depth > MAX_DEPTH) {
        return 0;
    }
    c->p++; /* the opening bracket */
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 1;
    }
    for (;;) {
        if (keyed) {
            if (!scan_string(c, &start, &stop, &escaped)) {
                return 0;
            }
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':') {
                return 0;
            }
            c->p++;
            skip_ws(c);
        }
        if (!skip_value(c, depth + 1)) {
            return 0;
        }
        skip_ws(c);
        if (c->p >= c->end) {
            return 0;
        }
        if (*c->p == ',') {
            c->p++;
            skip_ws(c);
            continue;
        }
        if (*c->p == close) {
            c->p++;
            return 1;
        }
        return 0;
    }
}

static int skip_value(Cursor *c, int depth) {
    const unsigned char *start, *stop;
    int escaped, is_int;
    int64_t value;
    if (c->p >= c->end) {
        return 0;
    }
    switch (*c->p) {
    case '"':
        return scan_string(c, &start, &stop, &escaped);
    case '{':
        return skip_container(c, depth, '}', 1);
    case '[':
        return skip_container(c, depth, ']', 0);
    case 't':
        return scan_literal(c, "true", 4);
    case 'f':
        return scan_literal(c, "false", 5);
    case 'n':
        return scan_literal(c, "null", 4);
    default:
        return scan_number(c, &is_int, &value);
    }
}

/* Recently used texts -> their interned str, so a known symbol costs no allocation: a direct
 * mapped table (a collision replaces the slot; the caller's dict keeps the strings unique). */
#define CACHE_SLOTS 4096
#define CACHE_TEXT 32

typedef struct {
    Py_ssize_t len;
    PyObject *str;
    unsigned char text[CACHE_TEXT];
} CacheSlot;

static CacheSlot CACHE[CACHE_SLOTS];

/* The interned str of an unescaped ASCII text (a new reference), or NULL with an error set. */
static PyObject *interned(PyObject *strings, const unsigned char *start, Py_ssize_t n) {
    CacheSlot *slot = NULL;
    PyObject *fresh, *kept;
    if (n <= CACHE_TEXT) {
        uint32_t hash = 2166136261u; /* FNV-1a */
        for (Py_ssize_t i = 0; i < n; i++) {
            hash = (hash ^ start[i]) * 16777619u;
        }
        slot = &CACHE[hash & (CACHE_SLOTS - 1)];
        if (slot->str != NULL && slot->len == n && memcmp(slot->text, start, (size_t)n) == 0) {
            Py_INCREF(slot->str);
            return slot->str;
        }
    }
    fresh = PyUnicode_DecodeASCII((const char *)start, n, NULL);
    if (fresh == NULL) {
        return NULL;
    }
    kept = PyDict_SetDefault(strings, fresh, fresh);
    Py_XINCREF(kept);
    Py_DECREF(fresh);
    if (kept != NULL && slot != NULL) {
        Py_INCREF(kept);
        Py_XSETREF(slot->str, kept);
        slot->len = n;
        memcpy(slot->text, start, (size_t)n);
    }
    return kept;
}

static int key_index(const Keys *keys, const unsigned char *start, Py_ssize_t n) {
    for (int k = 0; k < N_KEYS; k++) {
        if (keys->text[k] != NULL && keys->len[k] == n && memcmp(keys->text[k], start, (size_t)n) == 0) {
            return k;
        }
    }
    return -1;
}

/* One record value. 1: columns filled; 0: refused (the general path); -1: a Python error. */
int fd_record(const Keys *keys, PyObject *strings, const char *text, Py_ssize_t size,
                  PyObject **symbol, PyObject **type, int64_t ints[N_INTS]) {
    Cursor c = {(const unsigned char *)text, (const unsigned char *)text + size};
    const unsigned char *start, *stop;
    int escaped, seen[N_KEYS] = {0};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') {
        return 0;
    }
    c.p++;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        return 0; /* no symbol */
    }
    for (;;) {
        int k;
        if (!scan_string(&c, &start, &stop, &escaped)) {
            return 0;
        }
        if (escaped) {
            return 0; /* an escaped key may spell a mapped one */
        }
        k = key_index(keys, start, stop - start);
        skip_ws(&c);
        if (c.p >= c.end || *c.p != ':') {
            return 0;
        }
        c.p++;
        skip_ws(&c);
        if (k < 0) {
            if (!skip_value(&c, 1)) {
                return 0;
            }
        } else {
            if (seen[k]) {
                return 0;
            }
            seen[k] = 1;
            if (k == K_SYMBOL || k == K_TYPE) {
                PyObject **slot = k == K_SYMBOL ? symbol : type;
                if (!scan_string(&c, &start, &stop, &escaped) || escaped) {
                    return 0;
                }
                *slot = interned(strings, start, stop - start);
                if (*slot == NULL) {
                    return -1;
                }
            } else {
                int is_int;
                int64_t value;
                if (!scan_number(&c, &is_int, &value) || !is_int) {
                    return 0;
                }
                ints[k - K_SEQ] = value;
            }
        }
        skip_ws(&c);
        if (c.p >= c.end) {
            return 0;
        }
        if (*c.p == ',') {
            c.p++;
            skip_ws(&c);
            continue;
        }
        if (*c.p != '}') {
            return 0;
        }
        c.p++;
        skip_ws(&c);
        if (c.p != c.end) {
            return 0; /* trailing text */
        }
        break;
    }
    return seen[K_SYMBOL] && seen[K_SEQ] && seen[K_EXCHANGE];
}

int fd_parse_keys(PyObject *tuple, Keys *keys) {
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != N_KEYS) {
        PyErr_SetString(PyExc_TypeError, "keys must be a 6-tuple of bytes or None");
        return 0;
    }
    for (int k = 0; k < N_KEYS; k++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, k);
        if (item == Py_None) {
            keys->text[k] = NULL;
            keys->len[k] = 0;
        } else if (PyBytes_Check(item)) {
            keys->text[k] = PyBytes_AS_STRING(item);
            keys->len[k] = PyBytes_GET_SIZE(item);
        } else {
            PyErr_SetString(PyExc_TypeError, "keys must be a 6-tuple of bytes or None");
            return 0;
        }
    }
    if (keys->text[K_SYMBOL] == NULL || keys->text[K_SEQ] == NULL || keys->text[K_EXCHANGE] == NULL) {
        PyErr_SetString(PyExc_ValueError, "the symbol, seq and exchange keys are required");
        return 0;
    }
    return 1;
}

int fd_columns_init(Columns *c, Py_ssize_t n) {
    c->n = n;
    c->symbols = PyList_New(n);
    c->types = PyList_New(n);
    c->ints = PyByteArray_FromStringAndSize(NULL, n * N_INTS * (Py_ssize_t)sizeof(int64_t));
    c->empty = PyUnicode_FromStringAndSize("", 0);
    if (c->symbols == NULL || c->types == NULL || c->ints == NULL || c->empty == NULL) {
        fd_columns_clear(c);
        return 0;
    }
    return 1;
}

int fd_columns_put(Columns *c, Py_ssize_t i, const Keys *keys, PyObject *strings,
                   const char *text, Py_ssize_t size) {
    PyObject *symbol = NULL, *type = NULL;
    int64_t row[N_INTS] = {0, 0, 0, 0};
    int64_t *columns = (int64_t *)PyByteArray_AS_STRING(c->ints);
    int status = fd_record(keys, strings, text, size, &symbol, &type, row);
    if (status <= 0) {
        Py_XDECREF(symbol);
        Py_XDECREF(type);
        return status;
    }
    if (type == NULL) {
        Py_INCREF(c->empty);
        type = c->empty;
    }
    PyList_SET_ITEM(c->symbols, i, symbol);
    PyList_SET_ITEM(c->types, i, type);
    for (int k = 0; k < N_INTS; k++) {
        columns[k * c->n + i] = row[k];
    }
    return 1;
}

PyObject *fd_columns_take(Columns *c) {
    PyObject *out = Py_BuildValue("(OOO)", c->symbols, c->types, c->ints);
    fd_columns_clear(c);
    return out;
}

void fd_columns_clear(Columns *c) {
    Py_CLEAR(c->symbols);
    Py_CLEAR(c->types);
    Py_CLEAR(c->ints);
    Py_CLEAR(c->empty);
}

static PyObject *extract(PyObject *self, PyObject *args) {
    PyObject *values, *key_tuple, *strings;
    Columns columns;
    Keys keys;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!OO!:extract", &PyList_Type, &values, &key_tuple, &PyDict_Type,
                          &strings)) {
        return NULL;
    }
    if (!fd_parse_keys(key_tuple, &keys)) {
        return NULL;
    }
    n = PyList_GET_SIZE(values);
    if (!fd_columns_init(&columns, n)) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = PyList_GET_ITEM(values, i);
        int status = PyBytes_Check(value)
                         ? fd_columns_put(&columns, i, &keys, strings, PyBytes_AS_STRING(value),
                                          PyBytes_GET_SIZE(value))
                         : 0;
        if (status <= 0) {
            fd_columns_clear(&columns);
            if (status < 0) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
    }
    return fd_columns_take(&columns);
}

static PyMethodDef methods[] = {
    {"extract", extract, METH_VARARGS,
     "extract(values, keys, strings) -> (symbols, types, ints) or None; see the module source."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "harness.collector._fastdecode",
    "The collector's hot path in C: KafkaReader and the flat-record decoder "
    "(harness/collector/_fastdecode.c, _kafkaread.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastdecode(void) {
    PyObject *m;
    init_plain();
    m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (fd_add_kafka_reader(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
