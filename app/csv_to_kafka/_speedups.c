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

/* The field at text[*p]: its contents are text[*start:*stop] (inside the quotes if *quoted, with
 * doubled quotes as they are, *doubled set if there are any); *p moves past the field (past the
 * closing quote). ROW_UNSURE where the csv module might read it otherwise. */
static inline int
scan_field(const char *text, Py_ssize_t *p, Py_ssize_t end, char delimiter, char quote,
           Py_ssize_t *start, Py_ssize_t *stop, int *quoted, int *doubled)
{
    Py_ssize_t at = *p;
    *doubled = 0;
    if (text[at] == quote) {
        at++;
        *start = at;
        for (;;) {
            const char *q = memchr(text + at, quote, (size_t)(end - at));
            if (q == NULL) {
                return ROW_UNSURE; /* the row goes on in the next block */
            }
            at = q - text + 1;
            if (at < end && text[at] == quote) {
                at++; /* a doubled quote: one quote in the field */
                *doubled = 1;
                continue;
            }
            break;
        }
        *stop = at - 1; /* the closing quote */
        *quoted = 1;
    }
    else {
        /* An unquoted field: up to the delimiter or the newline, as it is. */
        *start = at;
        while (text[at] != delimiter && text[at] != '\n') {
            if (text[at] == quote) {
                return ROW_UNSURE; /* the csv module keeps it; the slow path decides */
            }
            at++;
        }
        *stop = at;
        *quoted = 0;
    }
    *p = at;
    return ROW_DONE;
}

/* The contents of a quoted field as JSON string contents (\" for a doubled '"', \n, \t), into
 * buf, which has room for twice their size; counts the newlines in *inside. */
static inline int
put_quoted(Buffer *buf, const char *text, Py_ssize_t start, Py_ssize_t stop, char quote,
           Py_ssize_t *inside)
{
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
            (*inside)++;
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
    return ROW_DONE;
}

/* Column kinds of a typed row (schema.py's rules; upper case: nullable). */
#define KIND_STRING 's'
#define KIND_INTEGER 'i'
#define KIND_NUMBER 'n'
#define KIND_BOOLEAN 'b'

static inline int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* An integer field as canonical digits (no '+', no leading zero, "-0" as "0"), into buf, which
 * has room for its size + 1; ROW_UNSURE if it is not an optional sign and digits. */
static int
put_integer(Buffer *buf, const char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    int negative = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        negative = s[i] == '-';
        i++;
    }
    if (i == n) {
        return ROW_UNSURE;
    }
    for (Py_ssize_t j = i; j < n; j++) {
        if (!is_digit(s[j])) {
            return ROW_UNSURE;
        }
    }
    while (i < n - 1 && s[i] == '0') {
        i++;
    }
    if (negative && !(n - i == 1 && s[i] == '0')) {
        put(buf, "-", 1);
    }
    put(buf, s + i, n - i);
    return ROW_DONE;
}

/* A number field with its own digits, mended only where JSON needs it (no '+', no leading zero
 * in the integer part, "0" before a bare fraction, no bare point), into buf, which has room for
 * its size + 1; ROW_UNSURE if it is not a decimal number. */
static int
put_number(Buffer *buf, const char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    int negative = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        negative = s[i] == '-';
        i++;
    }
    Py_ssize_t whole = i;
    while (i < n && is_digit(s[i])) {
        i++;
    }
    Py_ssize_t whole_end = i, fraction = i, fraction_end = i;
    if (i < n && s[i] == '.') {
        fraction = ++i;
        while (i < n && is_digit(s[i])) {
            i++;
        }
        fraction_end = i;
    }
    if (whole_end == whole && fraction_end == fraction) {
        return ROW_UNSURE; /* no digit before the exponent: "", "+", ".", "e5" */
    }
    Py_ssize_t exponent = i;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        Py_ssize_t digits = i;
        while (i < n && is_digit(s[i])) {
            i++;
        }
        if (i == digits) {
            return ROW_UNSURE;
        }
    }
    if (i != n) {
        return ROW_UNSURE;
    }
    if (negative) {
        put(buf, "-", 1);
    }
    while (whole < whole_end - 1 && s[whole] == '0') {
        whole++;
    }
    if (whole == whole_end) {
        put(buf, "0", 1);
    }
    else {
        put(buf, s + whole, whole_end - whole);
    }
    if (fraction_end > fraction) {
        put(buf, ".", 1);
        put(buf, s + fraction, fraction_end - fraction);
    }
    put(buf, s + exponent, n - exponent);
    return ROW_DONE;
}

static int
same_word(const char *s, Py_ssize_t n, const char *word)
{
    Py_ssize_t i = 0;
    for (; i < n && word[i]; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != word[i]) {
            return 0;
        }
    }
    return i == n && word[i] == '\0';
}

static const char *const TRUE_WORDS[] = {"true", "t", "yes", "y", "1", NULL};
static const char *const FALSE_WORDS[] = {"false", "f", "no", "n", "0", NULL};

static int
put_boolean(Buffer *buf, const char *s, Py_ssize_t n)
{
    for (const char *const *word = TRUE_WORDS; *word; word++) {
        if (same_word(s, n, *word)) {
            put(buf, "true", 4);
            return ROW_DONE;
        }
    }
    for (const char *const *word = FALSE_WORDS; *word; word++) {
        if (same_word(s, n, *word)) {
            put(buf, "false", 5);
            return ROW_DONE;
        }
    }
    return ROW_UNSURE;
}

static int
is_null_token(const char *s, Py_ssize_t n, PyObject *nulls)
{
    if (n == 0) {
        return 1;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(nulls);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *token = PyTuple_GET_ITEM(nulls, i);
        if (PyBytes_GET_SIZE(token) == n && memcmp(PyBytes_AS_STRING(token), s, (size_t)n) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
token_holds(PyObject *nulls, char c)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(nulls); i++) {
        PyObject *token = PyTuple_GET_ITEM(nulls, i);
        if (memchr(PyBytes_AS_STRING(token), c, (size_t)PyBytes_GET_SIZE(token)) != NULL) {
            return 1;
        }
    }
    return 0;
}

/* A typed field's JSON value, after its piece (which holds no quote of the field's own). */
static int
put_typed(Buffer *buf, const char *text, Py_ssize_t start, Py_ssize_t stop, int quoted,
          int doubled, char kind, PyObject *nulls, char quote, Py_ssize_t *inside)
{
    char lower = (char)(kind | 0x20);
    int nullable = kind != lower;
    if (doubled) {
        /* The value is not the bytes as they stand, but it holds a quote: only a string, and
         * not null unless a null token holds a quote too (then the slow path decides). */
        if (lower != KIND_STRING || (nullable && token_holds(nulls, quote))) {
            return ROW_UNSURE;
        }
    }
    else if (nullable && is_null_token(text + start, stop - start, nulls)) {
        put(buf, "null", 4);
        return ROW_DONE;
    }
    switch (lower) {
    case KIND_STRING:
        put(buf, "\"", 1);
        if (quoted) {
            if (put_quoted(buf, text, start, stop, quote, inside) != ROW_DONE) {
                return ROW_UNSURE;
            }
        }
        else {
            put(buf, text + start, stop - start);
        }
        put(buf, "\"", 1);
        return ROW_DONE;
    case KIND_INTEGER:
        return put_integer(buf, text + start, stop - start);
    case KIND_NUMBER:
        return put_number(buf, text + start, stop - start);
    case KIND_BOOLEAN:
        return put_boolean(buf, text + start, stop - start);
    default:
        return ROW_UNSURE;
    }
}

/* Encode the row at text[*pos] (text[end - 1] is a newline) into buf; on ROW_DONE, *pos is the
 * start of the next row and *newlines the newlines inside the row's quotes. With kinds (a
 * typed row), the pieces hold no quotes and each field is written as its column's kind says. */
static int
encode_row(Buffer *buf, const char *text, Py_ssize_t *pos, Py_ssize_t end, char delimiter,
           char quote, PyObject *pieces, Py_ssize_t width, const char *kinds, PyObject *nulls,
           Py_ssize_t *newlines)
{
    Py_ssize_t p = *pos;
    Py_ssize_t inside = 0;
    if (text[p] == '\n') {
        return ROW_UNSURE; /* a blank line, which the csv module skips */
    }
    for (Py_ssize_t field = 0; field < width; field++) {
        PyObject *piece = PyTuple_GET_ITEM(pieces, field);
        Py_ssize_t piece_size = PyBytes_GET_SIZE(piece);
        Py_ssize_t start, stop;
        int quoted, doubled;
        if (scan_field(text, &p, end, delimiter, quote, &start, &stop, &quoted, &doubled)
            != ROW_DONE) {
            return ROW_UNSURE;
        }
        /* Each character at most doubles as JSON (\" or \n or \t); quotes, null or a sign. */
        if (reserve(buf, piece_size + 2 * (stop - start) + 6) < 0) {
            return ROW_FAILED;
        }
        put(buf, PyBytes_AS_STRING(piece), piece_size);
        if (kinds != NULL) {
            if (put_typed(buf, text, start, stop, quoted, doubled, kinds[field], nulls, quote,
                          &inside) != ROW_DONE) {
                return ROW_UNSURE;
            }
        }
        else if (quoted) {
            if (put_quoted(buf, text, start, stop, quote, &inside) != ROW_DONE) {
                return ROW_UNSURE;
            }
        }
        else {
            put(buf, text + start, stop - start);
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
"encode_block(block, pos, end, line, max_rows, delimiter, quote, pieces, tail[, kinds, nulls])\n"
"--\n\n"
"Record values of the rows of block[pos:end], from line ``line``, up to ``max_rows``.\n\n"
"``block[end - 1]`` is a newline. ``pieces`` holds, per column, the JSON before its field\n"
"(``{\"name\":\"`` for the first, ``\",\"name\":\"`` after) and then the JSON between the last\n"
"field and the line number; ``tail`` follows the line number. Returns ``(values, lines, pos,\n"
"line, longest)``: the values, the line each row starts on, where the rows read end, the line\n"
"there, and the longest value's size. Stops before a row it is not sure of.\n\n"
"Typed rows (schema.py): ``kinds`` has a letter per column, s(tring), i(nteger), n(umber),\n"
"b(oolean), upper case if nullable, and ``nulls`` the null tokens; the pieces then hold no\n"
"quotes (``{\"name\":``, ``,\"name\":``). A field that does not fit its kind stops the loop\n"
"before its row, which the slow path reads and refuses.");

static PyObject *
encode_block(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 9 && nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "encode_block() takes 9 or 11 arguments");
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
    const char *kinds = NULL;
    PyObject *nulls = NULL;
    if (nargs == 11) {
        PyObject *kinds_obj = args[9];
        nulls = args[10];
        if (!PyBytes_Check(kinds_obj) || PyBytes_GET_SIZE(kinds_obj) != width
            || !PyTuple_Check(nulls)) {
            PyErr_SetString(PyExc_TypeError,
                            "encode_block(): kinds must be bytes, a letter per column, and "
                            "nulls a tuple of bytes");
            return NULL;
        }
        kinds = PyBytes_AS_STRING(kinds_obj);
        for (Py_ssize_t i = 0; i < width; i++) {
            if (strchr("sSiInNbB", kinds[i]) == NULL || kinds[i] == '\0') {
                PyErr_SetString(PyExc_ValueError, "encode_block(): a kind is one of sSiInNbB");
                return NULL;
            }
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(nulls); i++) {
            if (!PyBytes_Check(PyTuple_GET_ITEM(nulls, i))) {
                PyErr_SetString(PyExc_TypeError, "encode_block(): nulls must be bytes");
                return NULL;
            }
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
        int outcome = encode_row(&buf, text, &next, end, delimiter, quote, pieces, width, kinds,
                                 nulls, &newlines);
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
