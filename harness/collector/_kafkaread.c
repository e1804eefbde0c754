/* `KafkaReader`: the collector's Kafka consumer, librdkafka's C API without Python objects per
 * record.
 *
 * confluent-kafka's `Consumer.consume()` builds a Python `Message` (and bytes for its key and
 * value) for every record; at 50,000 msg/s over 3 x 495 partitions that was about a third of the
 * collector process's CPU (bench/README.md). This type reads a batch with
 * `rd_kafka_consume_batch_queue` and, in the same pass over the librdkafka messages, counts the
 * key and value bytes, takes each record's broker append time (LogAppendTime topics, contract 3)
 * and decodes the mapped fields of the value in place with `fd_record` (harness/collector/
 * _fastdecode.c), so the common batch costs one call and three flat columns.
 *
 *     reader = KafkaReader({"bootstrap.servers": ..., "group.id": ..., ...})  # str -> str
 *     reader.assign([(topic, partition, offset), ...])       # incremental, at these offsets
 *     reader.read(mode, max_messages, timeout_s, keys, strings)
 *         -> (records, nbytes, errors, last_error, append, payload)
 *     reader.positions()                                     # [(topic, partition, next offset)]
 *     reader.close()
 *
 * `records`: messages with a value (an error event or a null value is not a record); `nbytes`:
 * key + value bytes of every message; `errors` / `last_error`: error events and the last one's
 * text (None if none); `append`: a bytearray of `records` int64, each record's append time in
 * ns since the epoch (ms * 1,000,000; 0 when the topic stamps CreateTime). `payload` by mode:
 * 0 = None (counting only); 1 = the values as a list of bytes; 2 = (symbols, types, ints) as
 * `extract()` returns them when every value decodes, else the list of values (the caller decodes
 * them the general way, as for `extract()` returning None).
 */
#include "_fastdecode.h"

#include <librdkafka/rdkafka.h>

enum { READ_COUNT = 0, READ_VALUES = 1, READ_COLUMNS = 2 };

typedef struct {
    PyObject_HEAD
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    rd_kafka_message_t **batch;
    Py_ssize_t capacity;
} KafkaReader;

static PyObject *KafkaReaderError;

static void reader_close(KafkaReader *self) {
    if (self->queue != NULL) {
        rd_kafka_queue_destroy(self->queue);
        self->queue = NULL;
    }
    if (self->rk != NULL) {
        rd_kafka_t *rk = self->rk;
        self->rk = NULL;
        Py_BEGIN_ALLOW_THREADS
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        Py_END_ALLOW_THREADS
    }
    PyMem_Free(self->batch);
    self->batch = NULL;
    self->capacity = 0;
}

static void reader_dealloc(KafkaReader *self) {
    reader_close(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int reader_init(KafkaReader *self, PyObject *args, PyObject *kwargs) {
    PyObject *settings, *key, *value;
    Py_ssize_t pos = 0;
    char error[512];
    rd_kafka_conf_t *conf;
    if (!PyArg_ParseTuple(args, "O!:KafkaReader", &PyDict_Type, &settings)) {
        return -1;
    }
    if (self->rk != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "KafkaReader is already initialised");
        return -1;
    }
    conf = rd_kafka_conf_new();
    while (PyDict_Next(settings, &pos, &key, &value)) {
        const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        const char *text = PyUnicode_Check(value) ? PyUnicode_AsUTF8(value) : NULL;
        if (name == NULL || text == NULL) {
            rd_kafka_conf_destroy(conf);
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "KafkaReader settings are str -> str");
            }
            return -1;
        }
        if (rd_kafka_conf_set(conf, name, text, error, sizeof error) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            PyErr_Format(PyExc_ValueError, "librdkafka setting %s=%s: %s", name, text, error);
            return -1;
        }
    }
    self->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof error); /* owns conf */
    if (self->rk == NULL) {
        PyErr_Format(KafkaReaderError, "librdkafka consumer: %s", error);
        return -1;
    }
    rd_kafka_poll_set_consumer(self->rk);
    self->queue = rd_kafka_queue_get_consumer(self->rk);
    return 0;
}

static int require_open(KafkaReader *self) {
    if (self->rk == NULL || self->queue == NULL) {
        PyErr_SetString(KafkaReaderError, "the KafkaReader is closed");
        return 0;
    }
    return 1;
}

static PyObject *reader_assign(KafkaReader *self, PyObject *partitions) {
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_error_t *error;
    Py_ssize_t n;
    if (!require_open(self)) {
        return NULL;
    }
    if (!PyList_Check(partitions)) {
        PyErr_SetString(PyExc_TypeError, "assign needs a list of (topic, partition, offset)");
        return NULL;
    }
    n = PyList_GET_SIZE(partitions);
    list = rd_kafka_topic_partition_list_new((int)n);
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *topic;
        int partition;
        long long offset;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(partitions, i), "siL:assign", &topic, &partition,
                              &offset)) {
            rd_kafka_topic_partition_list_destroy(list);
            return NULL;
        }
        rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
    }
    error = rd_kafka_incremental_assign(self->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (error != NULL) {
        PyErr_Format(KafkaReaderError, "assign: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The values of the batch's records as a list of bytes (the general path's input). */
static PyObject *values_of(rd_kafka_message_t **batch, Py_ssize_t n, Py_ssize_t records) {
    PyObject *values = PyList_New(records);
    Py_ssize_t j = 0;
    if (values == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = batch[i];
        PyObject *value;
        if (m->err || m->payload == NULL) {
            continue;
        }
        value = PyBytes_FromStringAndSize((const char *)m->payload, (Py_ssize_t)m->len);
        if (value == NULL) {
            Py_DECREF(values);
            return NULL;
        }
        PyList_SET_ITEM(values, j++, value);
    }
    return values;
}

/* (symbols, types, ints) of every record, or Py_None (new reference) when one is refused. */
static PyObject *columns_of(rd_kafka_message_t **batch, Py_ssize_t n, Py_ssize_t records,
                            const Keys *keys, PyObject *strings) {
    Columns columns;
    Py_ssize_t j = 0;
    if (!fd_columns_init(&columns, records)) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = batch[i];
        int status;
        if (m->err || m->payload == NULL) {
            continue;
        }
        status = fd_columns_put(&columns, j++, keys, strings, (const char *)m->payload,
                                (Py_ssize_t)m->len);
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

static PyObject *reader_read(KafkaReader *self, PyObject *args) {
    int mode, max_messages;
    double timeout_s;
    PyObject *key_tuple = Py_None, *strings = Py_None, *append = NULL, *payload = NULL;
    PyObject *last_error = NULL, *result = NULL;
    Keys keys;
    ssize_t got;
    Py_ssize_t n, records = 0, errors = 0;
    long long nbytes = 0;
    int64_t *stamps;
    if (!PyArg_ParseTuple(args, "iid|OO:read", &mode, &max_messages, &timeout_s, &key_tuple,
                          &strings)) {
        return NULL;
    }
    if (!require_open(self)) {
        return NULL;
    }
    if (mode < READ_COUNT || mode > READ_COLUMNS || max_messages < 1) {
        PyErr_SetString(PyExc_ValueError, "read(mode 0..2, max_messages >= 1, timeout_s, ...)");
        return NULL;
    }
    if (mode == READ_COLUMNS &&
        (!PyDict_Check(strings) || !fd_parse_keys(key_tuple, &keys))) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "mode 2 needs keys (a 6-tuple) and strings (a dict)");
        }
        return NULL;
    }
    if (max_messages > self->capacity) {
        rd_kafka_message_t **grown = PyMem_Realloc(self->batch, sizeof(*grown) * (size_t)max_messages);
        if (grown == NULL) {
            return PyErr_NoMemory();
        }
        self->batch = grown;
        self->capacity = max_messages;
    }
    Py_BEGIN_ALLOW_THREADS
    got = rd_kafka_consume_batch_queue(self->queue, (int)(timeout_s * 1000), self->batch,
                                       (size_t)max_messages);
    Py_END_ALLOW_THREADS
    if (got < 0) {
        PyErr_Format(KafkaReaderError, "consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
        return NULL;
    }
    n = (Py_ssize_t)got;
    for (Py_ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = self->batch[i];
        if (m->err) {
            errors++;
            continue;
        }
        nbytes += (long long)m->key_len + (long long)(m->payload != NULL ? m->len : 0);
        records += m->payload != NULL;
    }
    append = PyByteArray_FromStringAndSize(NULL, records * (Py_ssize_t)sizeof(int64_t));
    if (append == NULL) {
        goto done;
    }
    stamps = (int64_t *)PyByteArray_AS_STRING(append);
    for (Py_ssize_t i = 0, j = 0; i < n; i++) {
        rd_kafka_message_t *m = self->batch[i];
        rd_kafka_timestamp_type_t kind;
        int64_t ms;
        if (m->err) {
            Py_XDECREF(last_error);
            last_error = PyUnicode_FromString(rd_kafka_message_errstr(m));
            if (last_error == NULL) {
                goto done;
            }
            continue;
        }
        if (m->payload == NULL) {
            continue;
        }
        ms = rd_kafka_message_timestamp(m, &kind);
        stamps[j++] = (kind == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME && ms > 0) ? ms * 1000000 : 0;
    }
    if (mode == READ_VALUES) {
        payload = values_of(self->batch, n, records);
    } else if (mode == READ_COLUMNS) {
        payload = columns_of(self->batch, n, records, &keys, strings);
        if (payload == Py_None) {
            Py_DECREF(payload);
            payload = values_of(self->batch, n, records);
        }
    } else {
        Py_INCREF(Py_None);
        payload = Py_None;
    }
    if (payload == NULL) {
        goto done;
    }
    if (last_error == NULL) {
        Py_INCREF(Py_None);
        last_error = Py_None;
    }
    result = Py_BuildValue("(nLnOOO)", records, nbytes, errors, last_error, append, payload);
done:
    for (Py_ssize_t i = 0; i < n; i++) {
        rd_kafka_message_destroy(self->batch[i]);
    }
    Py_XDECREF(append);
    Py_XDECREF(payload);
    Py_XDECREF(last_error);
    return result;
}

/* [(topic, partition, next offset)] of the assignment: the offset after the last record the
 * application consumed, or a negative logical offset (RD_KAFKA_OFFSET_INVALID) when none was. */
static PyObject *reader_positions(KafkaReader *self, PyObject *unused) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t err;
    PyObject *out;
    if (!require_open(self)) {
        return NULL;
    }
    err = rd_kafka_assignment(self->rk, &parts);
    if (!err) {
        err = rd_kafka_position(self->rk, parts);
    }
    if (err) {
        if (parts != NULL) {
            rd_kafka_topic_partition_list_destroy(parts);
        }
        PyErr_Format(KafkaReaderError, "positions: %s", rd_kafka_err2str(err));
        return NULL;
    }
    out = PyList_New(parts->cnt);
    for (int i = 0; out != NULL && i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        PyObject *row = Py_BuildValue("(siL)", tp->topic, (int)tp->partition, (long long)tp->offset);
        if (row == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, row);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return out;
}

static PyObject *reader_close_method(KafkaReader *self, PyObject *unused) {
    reader_close(self);
    Py_RETURN_NONE;
}

static PyMethodDef reader_methods[] = {
    {"assign", (PyCFunction)reader_assign, METH_O,
     "assign([(topic, partition, offset), ...]): read these partitions too, from these offsets."},
    {"read", (PyCFunction)reader_read, METH_VARARGS,
     "read(mode, max_messages, timeout_s, keys=None, strings=None) -> (records, nbytes, errors, "
     "last_error, append, payload); see harness/collector/_kafkaread.c."},
    {"positions", (PyCFunction)reader_positions, METH_NOARGS,
     "positions() -> [(topic, partition, next offset)] of the assignment (negative: none yet)."},
    {"close", (PyCFunction)reader_close_method, METH_NOARGS,
     "close(): leave the partitions and destroy the consumer (idempotent)."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject fd_KafkaReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "harness.collector._fastdecode.KafkaReader",
    .tp_basicsize = sizeof(KafkaReader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A librdkafka consumer that reads batches into columns (see _kafkaread.c).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)reader_init,
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_methods = reader_methods,
};

/* Adds KafkaReader and KafkaReaderError to the module; -1 with a Python error on failure. */
int fd_add_kafka_reader(PyObject *module) {
    if (PyType_Ready(&fd_KafkaReaderType) < 0) {
        return -1;
    }
    KafkaReaderError = PyErr_NewException("harness.collector._fastdecode.KafkaReaderError",
                                          PyExc_RuntimeError, NULL);
    if (KafkaReaderError == NULL) {
        return -1;
    }
    Py_INCREF(&fd_KafkaReaderType);
    if (PyModule_AddObject(module, "KafkaReader", (PyObject *)&fd_KafkaReaderType) < 0) {
        Py_DECREF(&fd_KafkaReaderType);
        return -1;
    }
    if (PyModule_AddObject(module, "KafkaReaderError", KafkaReaderError) < 0) {
        return -1;
    }
    Py_INCREF(KafkaReaderError); /* the module's reference was stolen; keep ours */
    return 0;
}
