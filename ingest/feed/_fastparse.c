/* The reference core's hot path in C: one Level 1 `Q` line -> a Level1Update.
 *
 * `Level1Parser(positions, width, near_second, near_ns, dated_second, dated_resolve, new_float,
 * new_int, update_type).parse(line, hint_ns)` does exactly what `LineParser._level1` (the
 * Python reference in ingest/feed/parse.py) does for a `Q` line, in the same order, and
 * returns:
 *
 * - a `update_type` (Level1Update) instance;
 * - a (reason, detail) tuple for a malformed line (the caller makes a `Malformed`);
 * - NotImplemented when the line is outside what this code handles (not compact ASCII, longer
 *   than max_line_chars): the caller uses the Python path, which reports those;
 * - or raises what the Python path raises for a bad number (ValueError with the same text:
 *   any number text that is not plain digits is handed to the same Python functions).
 *
 * Plain digit texts are converted here (prices: the same double as float(), see `price`);
 * time texts are answered from the connection's NearTimeCache / DatedTimeCache tables (the
 * whole second + the microseconds) with the same rule as their Python methods, and what the
 * tables cannot answer goes to the methods themselves (the exact path, which fills them). The
 * differential tests (tests/unit/ingest/test_fastparse.py) compare both paths line by line.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define N_PICK 18
#define MAX_FIELDS 128
#define MAX_NUMBER_CHARS 32
#define MAX_KEY_CHARS 96
#define HALF_DAY_NS (43200LL * 1000000000LL)

/* Positions in LAYOUT_FIELDS order (ingest/feed/parse.py). */
enum {
    F_SYMBOL, F_T_PRICE, F_T_SIZE, F_T_TIME, F_T_DATE, F_T_MC, F_CONDITIONS, F_T_VOLUME,
    F_B_PRICE, F_B_SIZE, F_B_TIME, F_B_MC, F_A_PRICE, F_A_SIZE, F_A_TIME, F_A_MC,
    F_CONTENTS, F_TICK
};

typedef struct {
    const char *p;
    Py_ssize_t n;
} Span;

typedef struct {
    PyObject_HEAD
    Py_ssize_t pos[N_PICK];
    Py_ssize_t width;
    Py_ssize_t max_line_chars;
    PyObject *near_second;
    PyObject *near_ns;
    PyObject *dated_second;
    PyObject *dated_resolve;
    PyObject *new_float;
    PyObject *new_int;
    PyTypeObject *update_type;
} Level1Parser;

static PyObject *malformed(const char *reason, PyObject *detail) {
    if (detail == NULL) {
        return NULL;
    }
    PyObject *out = Py_BuildValue("(sN)", reason, detail);
    return out;
}

static int all_digits(Span s) {
    for (Py_ssize_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return 0;
        }
    }
    return 1;
}

static int printable(Span s) {
    for (Py_ssize_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c > 0x7e) {
            return 0;
        }
    }
    return 1;
}

static int same(Span a, Span b) {
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, (size_t)a.n) == 0);
}

static PyObject *text(Span s) {
    return PyUnicode_FromStringAndSize(s.p, s.n);
}

static PyObject *call_with_text(PyObject *func, Span s) {
    PyObject *arg = text(s);
    if (arg == NULL) {
        return NULL;
    }
    PyObject *out = PyObject_CallOneArg(func, arg);
    Py_DECREF(arg);
    return out;
}

static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                               1e11, 1e12, 1e13, 1e14, 1e15};

/* A price: None when empty; plain decimal text (digits, one inner `.`) converted here; anything
 * else goes to the Python `_new_float` (finite check, its error texts). Up to 15 digits the
 * significand and 10^decimals are exact doubles and one IEEE division rounds correctly
 * (Clinger's fast path), i.e. the same double as float(text); longer texts use
 * PyOS_string_to_double, what float() itself calls. */
static PyObject *price(Level1Parser *self, Span s) {
    if (s.n == 0) {
        Py_RETURN_NONE;
    }
    if (s.n < MAX_NUMBER_CHARS && s.p[0] >= '0' && s.p[0] <= '9' && s.p[s.n - 1] != '.') {
        int dots = 0;
        int digits = 0;
        int decimals = 0;
        long long significand = 0;
        int simple = 1;
        for (Py_ssize_t i = 0; i < s.n; i++) {
            char c = s.p[i];
            if (c == '.') {
                dots++;
            } else if (c >= '0' && c <= '9') {
                significand = significand * 10 + (c - '0');
                digits++;
                decimals += dots;
            } else {
                simple = 0;
                break;
            }
        }
        if (simple && dots <= 1) {
            if (digits <= 15) {
                return PyFloat_FromDouble((double)significand / POW10[decimals]);
            }
            char buf[MAX_NUMBER_CHARS];
            memcpy(buf, s.p, (size_t)s.n);
            buf[s.n] = '\0';
            char *end = NULL;
            double value = PyOS_string_to_double(buf, &end, NULL);
            if (value == -1.0 && PyErr_Occurred()) {
                return NULL;
            }
            if (end == buf + s.n) {
                return PyFloat_FromDouble(value);
            }
        }
    }
    return call_with_text(self->new_float, s);
}

/* A size or market center: None when empty; plain digits converted here; anything else goes
 * to the Python `_new_int` (negative check, its error texts). */
static PyObject *count(Level1Parser *self, Span s) {
    if (s.n == 0) {
        Py_RETURN_NONE;
    }
    if (s.n <= 18 && all_digits(s)) {
        long long value = 0;
        for (Py_ssize_t i = 0; i < s.n; i++) {
            value = value * 10 + (s.p[i] - '0');
        }
        return PyLong_FromLongLong(value);
    }
    return call_with_text(self->new_int, s);
}

/* int(text) for Total Volume and TickID (None when empty): Python's own int() otherwise. */
static PyObject *plain_int(Span s) {
    if (s.n == 0) {
        Py_RETURN_NONE;
    }
    if (s.n <= 18 && all_digits(s)) {
        long long value = 0;
        for (Py_ssize_t i = 0; i < s.n; i++) {
            value = value * 10 + (s.p[i] - '0');
        }
        return PyLong_FromLongLong(value);
    }
    PyObject *arg = text(s);
    if (arg == NULL) {
        return NULL;
    }
    PyObject *out = PyLong_FromUnicodeObject(arg, 10);
    Py_DECREF(arg);
    return out;
}

/* 1 if an int below zero, 0 if not (or None), -1 on error. */
static int is_negative(PyObject *value) {
    if (value == Py_None) {
        return 0;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (x == -1 && PyErr_Occurred()) {
        return -1;
    }
    return overflow < 0 || (overflow == 0 && x < 0);
}

/* The int value of a dict entry as long long; 0 if absent or not a plain int (no error). */
static int cached_ns(PyObject *dict, PyObject *key, long long *out) {
    PyObject *cached = PyDict_GetItemWithError(dict, key);
    if (cached == NULL || !PyLong_CheckExact(cached)) {
        return 0;
    }
    int overflow = 0;
    long long ns = PyLong_AsLongLongAndOverflow(cached, &overflow);
    if (overflow || (ns == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = ns;
    return 1;
}

/* `HH:MM:SS.ffffff`: 1 and the microseconds if the fraction is six digits, 0 if it is not,
 * -1 when the text is not of that shape (no `.` at 8, other length). */
static int fraction_us(Span time, long long *us) {
    if (time.n != 15 || time.p[8] != '.') {
        return -1;
    }
    long long value = 0;
    for (int i = 9; i < 15; i++) {
        char c = time.p[i];
        if (c < '0' || c > '9') {
            return 0;
        }
        value = value * 10 + (c - '0');
    }
    *us = value;
    return 1;
}

/* The cached value of `second_key` (a new reference, consumed; NULL = an error) plus `us`
 * microseconds in *ns: 1 when cached, 0 when not, -1 on an error. */
static int from_second(PyObject *table, PyObject *second_key, long long us, long long *ns) {
    if (second_key == NULL) {
        return -1;
    }
    long long base = 0;
    int found = cached_ns(table, second_key, &base);
    Py_DECREF(second_key);
    if (!found) {
        return PyErr_Occurred() ? -1 : 0;
    }
    *ns = base + us * 1000;
    return 1;
}

/* NearTimeCache.ns(text, hint): the whole second's value + the microseconds if within
 * +-12 h of the hint, else the method itself (the exact path, which caches the second). */
static PyObject *near_time(Level1Parser *self, Span s, PyObject *hint, long long hint_ns) {
    long long us = 0;
    long long ns = 0;
    int shape = fraction_us(s, &us);
    if (shape >= 0) {
        Span whole = {s.p, 8};
        int found = from_second(self->near_second, text(whole), us, &ns);
        if (found < 0) {
            return NULL;
        }
        if (found && shape == 0) {
            Py_RETURN_NONE;
        }
        if (found && ns - hint_ns >= -HALF_DAY_NS && ns - hint_ns <= HALF_DAY_NS) {
            return PyLong_FromLongLong(ns);
        }
    }
    PyObject *key = text(s);
    if (key == NULL) {
        return NULL;
    }
    PyObject *out = PyObject_CallFunctionObjArgs(self->near_ns, key, hint, NULL);
    Py_DECREF(key);
    return out;
}

/* DatedTimeCache.resolve(date, time, hint): the cached `date HH:MM:SS` + the microseconds,
 * else the method itself. No +-12 h window: a dated time is unambiguous. */
static PyObject *dated_time(Level1Parser *self, Span date, Span time, PyObject *hint) {
    long long us = 0;
    long long ns = 0;
    int shape = fraction_us(time, &us);
    if (shape >= 0 && date.n + 9 < MAX_KEY_CHARS) {
        char buf[MAX_KEY_CHARS];
        memcpy(buf, date.p, (size_t)date.n);
        buf[date.n] = ' ';
        memcpy(buf + date.n + 1, time.p, 8);
        int found = from_second(self->dated_second,
                                PyUnicode_FromStringAndSize(buf, date.n + 9), us, &ns);
        if (found < 0) {
            return NULL;
        }
        if (found && shape == 0) {
            Py_RETURN_NONE;
        }
        if (found) {
            return PyLong_FromLongLong(ns);
        }
    }
    PyObject *out = NULL;
    PyObject *date_text = text(date);
    PyObject *time_text = date_text == NULL ? NULL : text(time);
    if (time_text != NULL) {
        out = PyObject_CallFunctionObjArgs(self->dated_resolve, date_text, time_text, hint, NULL);
    }
    Py_XDECREF(date_text);
    Py_XDECREF(time_text);
    return out;
}

static PyObject *Level1Parser_parse(Level1Parser *self, PyObject *const *args, Py_ssize_t nargs) {
    if (self->update_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Level1Parser is not initialised");
        return NULL;
    }
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "parse(line, hint_ns) takes 2 arguments");
        return NULL;
    }
    PyObject *line = args[0];
    PyObject *hint = args[1];
    if (!PyUnicode_Check(line) || !PyUnicode_IS_COMPACT_ASCII(line) || !PyLong_Check(hint) ||
        PyUnicode_GET_LENGTH(line) > self->max_line_chars) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    long long hint_ns = PyLong_AsLongLong(hint);
    if (hint_ns == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    const char *s = (const char *)PyUnicode_1BYTE_DATA(line);
    Py_ssize_t len = PyUnicode_GET_LENGTH(line);
    Py_ssize_t width = self->width;

    /* line.split(","): the first `width` fields are kept, every field is counted. */
    Span fields[MAX_FIELDS + 2];
    Py_ssize_t n = 0;
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ',') {
            if (n <= width) {
                fields[n].p = s + start;
                fields[n].n = i - start;
            }
            n++;
            start = i + 1;
        }
    }
    if (n == width) {
        Span last = fields[n - 1];
        for (Py_ssize_t i = 0; i < last.n; i++) {
            if (last.p[i] != '\r' && last.p[i] != '\n') {
                return malformed("bad_field_count",
                                 PyUnicode_FromFormat("%zd fields, last not empty", n));
            }
        }
    } else if (n != width - 1) {
        return malformed("bad_field_count",
                         PyUnicode_FromFormat("%zd fields, layout %zd", n, width));
    }
    for (Py_ssize_t i = n; i <= width; i++) { /* the parser's trailing empty fields */
        fields[i].p = s + len;
        fields[i].n = 0;
    }
    Span f[N_PICK];
    for (int i = 0; i < N_PICK; i++) {
        f[i] = fields[self->pos[i]];
    }
    if (f[F_SYMBOL].n == 0) {
        return malformed("bad_symbol", PyUnicode_FromString(""));
    }
    if (!printable(f[F_SYMBOL]) || !printable(f[F_CONDITIONS]) || !printable(f[F_CONTENTS])) {
        return malformed("binary", PyUnicode_FromString("control character in a text field"));
    }

    PyObject *item[N_PICK];
    for (int i = 0; i < N_PICK; i++) {
        item[i] = NULL;
    }
    PyObject *result = NULL;
    int negative = 0;
    /* Level1Update order: summary, symbol, trade_price, trade_size, trade_ns, trade_mc,
     * conditions, total_volume, bid, bid_size, bid_ns, bid_mc, ask, ask_size, ask_ns,
     * ask_mc, contents, tick_id. Conversions in the Python path's order. */
    if (!(item[2] = price(self, f[F_T_PRICE]))) goto done;
    if (!(item[8] = price(self, f[F_B_PRICE]))) goto done;
    if (!(item[12] = price(self, f[F_A_PRICE]))) goto done;
    if (!(item[3] = count(self, f[F_T_SIZE]))) goto done;
    if (!(item[9] = count(self, f[F_B_SIZE]))) goto done;
    if (!(item[13] = count(self, f[F_A_SIZE]))) goto done;
    if (!(item[5] = count(self, f[F_T_MC]))) goto done;
    if (!(item[11] = count(self, f[F_B_MC]))) goto done;
    if (!(item[15] = count(self, f[F_A_MC]))) goto done;
    if (!(item[7] = plain_int(f[F_T_VOLUME]))) goto done;
    if (!(item[17] = plain_int(f[F_TICK]))) goto done;
    negative = is_negative(item[7]);
    if (negative == 0) {
        negative = is_negative(item[17]);
    }
    if (negative < 0) goto done;
    if (negative) {
        result = malformed("bad_number", PyUnicode_FromString("negative volume or TickID"));
        goto done;
    }
    if (f[F_T_TIME].n) {
        if (f[F_T_DATE].n) {
            item[4] = dated_time(self, f[F_T_DATE], f[F_T_TIME], hint);
        } else {
            item[4] = near_time(self, f[F_T_TIME], hint, hint_ns);
        }
        if (item[4] == NULL) goto done;
        if (item[4] == Py_None) {
            result = malformed("bad_time", PyUnicode_FromString("Most Recent Trade Time/Date"));
            goto done;
        }
    } else {
        item[4] = Py_NewRef(Py_None);
    }
    if (f[F_B_TIME].n) {
        if (!(item[10] = near_time(self, f[F_B_TIME], hint, hint_ns))) goto done;
    } else {
        item[10] = Py_NewRef(Py_None);
    }
    if (same(f[F_A_TIME], f[F_B_TIME])) {
        item[14] = Py_NewRef(item[10]);
    } else if (f[F_A_TIME].n) {
        if (!(item[14] = near_time(self, f[F_A_TIME], hint, hint_ns))) goto done;
    } else {
        item[14] = Py_NewRef(Py_None);
    }
    if ((f[F_B_TIME].n && item[10] == Py_None) || (f[F_A_TIME].n && item[14] == Py_None)) {
        result = malformed("bad_time", PyUnicode_FromString("Bid/Ask Time"));
        goto done;
    }
    if (!(item[1] = text(f[F_SYMBOL]))) goto done;
    if (!(item[6] = text(f[F_CONDITIONS]))) goto done;
    if (!(item[16] = text(f[F_CONTENTS]))) goto done;
    item[0] = Py_NewRef(Py_False);

    result = self->update_type->tp_alloc(self->update_type, N_PICK);
    if (result == NULL) goto done;
    for (int i = 0; i < N_PICK; i++) {
        PyTuple_SET_ITEM(result, i, item[i]); /* steals */
        item[i] = NULL;
    }
done:
    for (int i = 0; i < N_PICK; i++) {
        Py_XDECREF(item[i]);
    }
    return result;
}

static int Level1Parser_init(Level1Parser *self, PyObject *args, PyObject *kwargs) {
    PyObject *positions;
    Py_ssize_t width;
    PyObject *update_type;
    static char *names[] = {"positions",    "width",     "near_second", "near_ns",
                            "dated_second", "dated_resolve", "new_float", "new_int",
                            "update_type",  "max_line_chars", NULL};
    PyObject *near_second, *near_ns, *dated_second, *dated_resolve, *new_float, *new_int;
    Py_ssize_t max_line_chars;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OnO!OO!OOOO!n", names, &positions, &width,
                                     &PyDict_Type, &near_second, &near_ns, &PyDict_Type,
                                     &dated_second, &dated_resolve, &new_float, &new_int,
                                     &PyType_Type, &update_type, &max_line_chars)) {
        return -1;
    }
    if (self->update_type != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Level1Parser is initialised once");
        return -1;
    }
    if (width < 2 || width > MAX_FIELDS) {
        PyErr_Format(PyExc_ValueError, "layout width %zd outside 2..%d", width, MAX_FIELDS);
        return -1;
    }
    if (!PyType_IsSubtype((PyTypeObject *)update_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "update_type must be a tuple subclass");
        return -1;
    }
    PyObject *seq = PySequence_Fast(positions, "positions must be a sequence");
    if (seq == NULL) {
        return -1;
    }
    if (PySequence_Fast_GET_SIZE(seq) != N_PICK) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "positions must hold %d indices", N_PICK);
        return -1;
    }
    for (int i = 0; i < N_PICK; i++) {
        Py_ssize_t at = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i));
        if (at == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        if (at < 0 || at > width) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_ValueError, "position %zd outside 0..%zd", at, width);
            return -1;
        }
        self->pos[i] = at;
    }
    Py_DECREF(seq);
    self->width = width;
    self->max_line_chars = max_line_chars;
    self->near_second = Py_NewRef(near_second);
    self->near_ns = Py_NewRef(near_ns);
    self->dated_second = Py_NewRef(dated_second);
    self->dated_resolve = Py_NewRef(dated_resolve);
    self->new_float = Py_NewRef(new_float);
    self->new_int = Py_NewRef(new_int);
    self->update_type = (PyTypeObject *)Py_NewRef(update_type);
    return 0;
}

static int Level1Parser_traverse(Level1Parser *self, visitproc visit, void *arg) {
    Py_VISIT(self->near_second);
    Py_VISIT(self->near_ns);
    Py_VISIT(self->dated_second);
    Py_VISIT(self->dated_resolve);
    Py_VISIT(self->new_float);
    Py_VISIT(self->new_int);
    Py_VISIT(self->update_type);
    return 0;
}

static int Level1Parser_clear(Level1Parser *self) {
    Py_CLEAR(self->near_second);
    Py_CLEAR(self->near_ns);
    Py_CLEAR(self->dated_second);
    Py_CLEAR(self->dated_resolve);
    Py_CLEAR(self->new_float);
    Py_CLEAR(self->new_int);
    Py_CLEAR(self->update_type);
    return 0;
}

static void Level1Parser_dealloc(Level1Parser *self) {
    PyObject_GC_UnTrack(self);
    Level1Parser_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Level1Parser_methods[] = {
    {"parse", (PyCFunction)(void (*)(void))Level1Parser_parse, METH_FASTCALL,
     "parse(line, hint_ns): a Q line (no CRLF) -> Level1Update | (reason, detail) | "
     "NotImplemented; raises ValueError for a bad number as the Python path does."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Level1ParserType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ingest.feed._fastparse.Level1Parser",
    .tp_basicsize = sizeof(Level1Parser),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The Level 1 Q-line parser of one connection's layout (see the module doc).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Level1Parser_init,
    .tp_dealloc = (destructor)Level1Parser_dealloc,
    .tp_traverse = (traverseproc)Level1Parser_traverse,
    .tp_clear = (inquiry)Level1Parser_clear,
    .tp_methods = Level1Parser_methods,
};

static struct PyModuleDef fastparse_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ingest.feed._fastparse",
    .m_doc = "C hot path of ingest.feed.parse (Level 1 Q lines).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fastparse(void) {
    if (PyType_Ready(&Level1ParserType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&fastparse_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&Level1ParserType);
    if (PyModule_AddObject(module, "Level1Parser", (PyObject *)&Level1ParserType) < 0) {
        Py_DECREF(&Level1ParserType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
