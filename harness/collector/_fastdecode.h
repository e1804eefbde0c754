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

/* Adds KafkaReader and KafkaReaderError (harness/collector/_kafkaread.c) to the module. */
int fd_add_kafka_reader(PyObject *module);

#endif
