/* csv_to_kafka._speedups: the copy's hot loop in C (optional; source.py falls back to Python).
 *
 * encode_block() turns the rows of a block of CSV bytes into record values, byte for byte what
 * record.RecordEncoder makes of them (a JSON object of the header's names and the fields, then
 * _source_line and _source_file), without a Python string, list or dict per row.
 *
 * It reads only what it is sure of, exactly as the csv module (strict, doublequote) reads it:
 * unquoted fields without a quote, and quoted fields whose quotes are doubled inside and whose
 * closing quote is followed by the delimiter or the end of the line. At the first row it is not
 * sure of (the wrong number of fields, a quote inside an unquoted field, text after a closing
 * quote, a quoted row that goes on past the block, a byte JSON escapes other than a newline or a
 * tab inside quotes) it stops before that row and returns what it has: the caller reads that row
 * the slow way, which finds the error or reads it right.
 *
 * The block was checked by the caller: UTF-8, no control character but newline (and the
 * delimiter, if it is a tab), no backslash, and no '"' unless '"' is the quote character. So an
 * unquoted field is its JSON string's contents as it is, and inside quotes only the quote, a
 * newline and a tab need escaping.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t size;
    Py_ssize_t capacity;
} Buffer;

static int
reserve(Buffer *buf, Py_ssize_t more)
{
    if (buf->size + more <= buf->capacity) {
        return 0;
    }
    Py_ssize_t capacity = buf->capacity ? buf->capacity : 4096;
    while (capacity < buf->size + more) {
        capacity *= 2;
    }
    char *data = PyMem_Realloc(buf->data, (size_t)capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf->data = data;
    buf->capacity = capacity;
    return 0;
}

/* The decimal digits of a positive n, written at the end of digits[24]; returns the first. */
static inline char *
decimal(char *digits, long long n)
{
    char *at = digits + 24;
    do {
        *--at = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    return at;
}

static inline void
put(Buffer *buf, const char *bytes, Py_ssize_t n)
{
    memcpy(buf->data + buf->size, bytes, (size_t)n);
    buf->size += n;
}

/* Row outcomes. */
#define ROW_DONE 0
#define ROW_UNSURE 1 /* left to the caller, which reads it the slow way */
#define ROW_FAILED -1 /* a Python error is set */

/* Encode the row at text[*pos] (text[end - 1] is a newline) into buf; on ROW_DONE, *pos is the
 * start of the next row and *newlines the newlines inside the row's quotes. */
static int
encode_row(Buffer *buf, const char *text, Py_ssize_t *pos, Py_ssize_t end, char delimiter,
           char quote, PyObject *pieces, Py_ssize_t width, Py_ssize_t *newlines)
{
    Py_ssize_t p = *pos;
    Py_ssize_t inside = 0;
    if (text[p] == '\n') {
        return ROW_UNSURE; /* a blank line, which the csv module skips */
    }
    for (Py_ssize_t field = 0; field < width; field++) {
        PyObject *piece = PyTuple_GET_ITEM(pieces, field);
        Py_ssize_t piece_size = PyBytes_GET_SIZE(piece);
        if (text[p] == quote) {
            /* A quoted field: each character at most doubles as JSON (\" or \n or \t). */
            p++;
            Py_ssize_t start = p;
            for (;;) {
                const char *q = memchr(text + p, quote, (size_t)(end - p));
                if (q == NULL) {
                    return ROW_UNSURE; /* the row goes on in the next block */
                }
                p = q - text + 1;
                if (p < end && text[p] == quote) {
                    p++; /* a doubled quote: one quote in the field */
                    continue;
                }
                break;
            }
            Py_ssize_t stop = p - 1; /* the closing quote */
            if (reserve(buf, piece_size + 2 * (stop - start)) < 0) {
                return ROW_FAILED;
            }
            put(buf, PyBytes_AS_STRING(piece), piece_size);
            char *out = buf->data + buf->size;
            for (Py_ssize_t i = start; i < stop; i++) {
                unsigned char c = (unsigned char)text[i];
                if (c == (unsigned char)quote) {
                    i++; /* the second of a doubled quote */
                    if (c == '"') {
                        *out++ = '\\';
                    }
                    *out++ = (char)c;
                }
                else if (c == '\n') {
                    *out++ = '\\';
                    *out++ = 'n';
                    inside++;
                }
                else if (c == '\t') {
                    *out++ = '\\';
                    *out++ = 't';
                }
                else if (c < 0x20 || c == '\\' || c == '"') {
                    return ROW_UNSURE; /* the caller's check keeps these out: not sure */
                }
                else {
                    *out++ = (char)c;
                }
            }
            buf->size = out - buf->data;
        }
        else {
            /* An unquoted field: up to the delimiter or the newline, as it is. */
            Py_ssize_t start = p;
            while (text[p] != delimiter && text[p] != '\n') {
                if (text[p] == quote) {
                    return ROW_UNSURE; /* the csv module keeps it; the slow path decides */
                }
                p++;
            }
            if (reserve(buf, piece_size + (p - start)) < 0) {
                return ROW_FAILED;
            }
            put(buf, PyBytes_AS_STRING(piece), piece_size);
            put(buf, text + start, p - start);
        }
        /* After a field: the delimiter, or the newline after the last one. */
        if (field + 1 < width) {
            if (text[p] != delimiter) {
                return ROW_UNSURE; /* fewer fields than the header, or text after a quote */
            }
        }
        else if (text[p] != '\n') {
            return ROW_UNSURE; /* more fields than the header, or text after a quote */
        }
        p++;
    }
    *pos = p;
    *newlines = inside;
    return ROW_DONE;
}

PyDoc_STRVAR(encode_block_doc,
"encode_block(block, pos, end, line, max_rows, delimiter, quote, pieces, tail)\n"
"--\n\n"
"Record values of the rows of block[pos:end], from line ``line``, up to ``max_rows``.\n\n"
"``block[end - 1]`` is a newline. ``pieces`` holds, per column, the JSON before its field\n"
"(``{\"name\":\"`` for the first, ``\",\"name\":\"`` after) and then the JSON between the last\n"
"field and the line number; ``tail`` follows the line number. Returns ``(values, lines, pos,\n"
"line, longest)``: the values, the line each row starts on, where the rows read end, the line\n"
"there, and the longest value's size. Stops before a row it is not sure of.");

static PyObject *
encode_block(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "encode_block() takes 9 arguments");
        return NULL;
    }
    PyObject *block = args[0];
    PyObject *delimiter_obj = args[5];
    PyObject *quote_obj = args[6];
    PyObject *pieces = args[7];
    PyObject *tail = args[8];
    if (!PyBytes_Check(block) || !PyBytes_Check(delimiter_obj) || !PyBytes_Check(quote_obj)
        || !PyTuple_Check(pieces) || !PyBytes_Check(tail)
        || PyBytes_GET_SIZE(delimiter_obj) != 1 || PyBytes_GET_SIZE(quote_obj) != 1
        || PyTuple_GET_SIZE(pieces) < 2) {
        PyErr_SetString(PyExc_TypeError,
                        "encode_block(bytes, int, int, int, int, bytes[1], bytes[1], "
                        "tuple[bytes, ...], bytes)");
        return NULL;
    }
    Py_ssize_t width = PyTuple_GET_SIZE(pieces) - 1;
    for (Py_ssize_t i = 0; i <= width; i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(pieces, i))) {
            PyErr_SetString(PyExc_TypeError, "encode_block(): pieces must be bytes");
            return NULL;
        }
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t end = PyLong_AsSsize_t(args[2]);
    long long line = PyLong_AsLongLong(args[3]);
    Py_ssize_t max_rows = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    const char *text = PyBytes_AS_STRING(block);
    if (pos < 0 || end > PyBytes_GET_SIZE(block) || pos > end || (end > pos && text[end - 1] != '\n')) {
        PyErr_SetString(PyExc_ValueError, "encode_block(): block[pos:end] must end with a newline");
        return NULL;
    }
    char delimiter = PyBytes_AS_STRING(delimiter_obj)[0];
    char quote = PyBytes_AS_STRING(quote_obj)[0];
    PyObject *last_piece = PyTuple_GET_ITEM(pieces, width);

    PyObject *values = PyList_New(0);
    PyObject *lines = PyList_New(0);
    Buffer buf = {NULL, 0, 0};
    Py_ssize_t longest = 0;
    if (values == NULL || lines == NULL) {
        goto failed;
    }
    for (Py_ssize_t rows = 0; rows < max_rows && pos < end; rows++) {
        buf.size = 0;
        Py_ssize_t next = pos;
        Py_ssize_t newlines = 0;
        int outcome = encode_row(&buf, text, &next, end, delimiter, quote, pieces, width,
                                 &newlines);
        if (outcome == ROW_FAILED) {
            goto failed;
        }
        if (outcome == ROW_UNSURE) {
            break;
        }
        char digits[24];
        char *first = decimal(digits, line + 1);
        Py_ssize_t n_digits = digits + sizeof digits - first;
        if (reserve(&buf, PyBytes_GET_SIZE(last_piece) + n_digits + PyBytes_GET_SIZE(tail)) < 0) {
            goto failed;
        }
        put(&buf, PyBytes_AS_STRING(last_piece), PyBytes_GET_SIZE(last_piece));
        put(&buf, first, n_digits);
        put(&buf, PyBytes_AS_STRING(tail), PyBytes_GET_SIZE(tail));
        PyObject *value = PyBytes_FromStringAndSize(buf.data, buf.size);
        if (value == NULL) {
            goto failed;
        }
        int appended = PyList_Append(values, value);
        Py_DECREF(value);
        PyObject *number = appended < 0 ? NULL : PyLong_FromLongLong(line + 1);
        if (number == NULL || PyList_Append(lines, number) < 0) {
            Py_XDECREF(number);
            goto failed;
        }
        Py_DECREF(number);
        if (buf.size > longest) {
            longest = buf.size;
        }
        line += 1 + newlines;
        pos = next;
    }
    PyMem_Free(buf.data);
    return Py_BuildValue("(NNnLn)", values, lines, pos, line, longest);

failed:
    PyMem_Free(buf.data);
    Py_XDECREF(values);
    Py_XDECREF(lines);
    return NULL;
}

static PyMethodDef methods[] = {
    {"encode_block", (PyCFunction)(void (*)(void))encode_block, METH_FASTCALL, encode_block_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "csv_to_kafka._speedups",
    .m_doc = "The copy's hot loop in C: see encode_block.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
