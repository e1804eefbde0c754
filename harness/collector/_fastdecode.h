/* What the collector's C sources share (harness/collector/_fastdecode.c, _kafkaread.c). */
#ifndef HARNESS_COLLECTOR_FASTDECODE_H
#define HARNESS_COLLECTOR_FASTDECODE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define N_KEYS 6
#define N_INTS 4

enum { K_SYMBOL, K_TYPE, K_SEQ, K_EXCHANGE, K_RECV, K_PRODUCED };

/* The mapped top-level keys of a record value (NULL: the core has no such field). */
typedef struct {
    const char *text[N_KEYS];
    Py_ssize_t len[N_KEYS];
} Keys;

/* `keys` from a 6-tuple of bytes or None; 0 with a Python error when it is not one. */
int fd_parse_keys(PyObject *tuple, Keys *keys);

/* One record value: 1 = *symbol, *type (new references, *type NULL when absent) and ints
 * (seq, exchange, recv, produced) filled; 0 = refused (the general path decodes it); -1 = a
 * Python error. `strings` interns the symbol and type texts. */
int fd_record(const Keys *keys, PyObject *strings, const char *text, Py_ssize_t size,
              PyObject **symbol, PyObject **type, int64_t ints[N_INTS]);

/* The columns of n records being decoded: symbols and types (lists) and ints (a bytearray of
 * N_INTS x n int64: seq, exchange, recv and produced one after the other). */
typedef struct {
    PyObject *symbols, *types, *ints, *empty;
    Py_ssize_t n;
} Columns;

/* 1 when the columns of n records are allocated; 0 with a Python error. */
int fd_columns_init(Columns *c, Py_ssize_t n);

/* Decodes one value into row i: fd_record's 1 (filled), 0 (refused) or -1 (a Python error). */
int fd_columns_put(Columns *c, Py_ssize_t i, const Keys *keys, PyObject *strings,
                   const char *text, Py_ssize_t size);

/* (symbols, types, ints), every row filled; the columns are handed over. */
PyObject *fd_columns_take(Columns *c);

/* Releases columns not handed over (idempotent). */
void fd_columns_clear(Columns *c);

/* Adds KafkaReader and KafkaReaderError (harness/collector/_kafkaread.c) to the module. */
int fd_add_kafka_reader(PyObject *module);

#endif
