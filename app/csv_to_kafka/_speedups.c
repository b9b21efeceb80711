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
#include <stdint.h>
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

/* -- value_keys: message keys and their partitions (keys.Keyer's, in C) -------------------- */

/* Kafka's Utils.murmur2 (seed 0x9747b28c) as an unsigned 32-bit value. */
static uint32_t
murmur2(const unsigned char *data, Py_ssize_t length)
{
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28cu ^ (uint32_t)length;
    Py_ssize_t end = length - length % 4;
    for (Py_ssize_t i = 0; i < end; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16
                     | (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length % 4) {
    case 3:
        h ^= (uint32_t)data[end + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[end + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)data[end];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* The length of the valid UTF-8 sequence at s[0:n] (a character), 0 if it is not one. */
static Py_ssize_t
utf8_char(const unsigned char *s, Py_ssize_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    Py_ssize_t size;
    uint32_t code;
    if (c >= 0xc2 && c <= 0xdf) {
        size = 2;
        code = c & 0x1f;
    }
    else if (c >= 0xe0 && c <= 0xef) {
        size = 3;
        code = c & 0x0f;
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        size = 4;
        code = c & 0x07;
    }
    else {
        return 0;
    }
    if (n < size) {
        return 0;
    }
    for (Py_ssize_t i = 1; i < size; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        code = code << 6 | (s[i] & 0x3f);
    }
    if ((size == 3 && (code < 0x800 || (code >= 0xd800 && code <= 0xdfff)))
        || (size == 4 && (code < 0x10000 || code > 0x10ffff))) {
        return 0;
    }
    return size;
}

static int
hex4(const unsigned char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (uint32_t)(c - '0');
        }
        else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t)(c - 'a' + 10);
        }
        else if (c >= 'A' && c <= 'F') {
            v |= (uint32_t)(c - 'A' + 10);
        }
        else {
            return -1;
        }
    }
    *out = v;
    return 0;
}

/* The JSON string whose opening quote is at s[*p]: *p moves past its closing quote; with out
 * (room for its size), its decoded UTF-8 text is written there and *size set. 0, or -1 where
 * the Python reference might read it otherwise (it then decides). */
static int
json_string(const unsigned char *s, Py_ssize_t *p, Py_ssize_t n, char *out, Py_ssize_t *size)
{
    Py_ssize_t i = *p + 1;
    Py_ssize_t w = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c == '"') {
            *p = i + 1;
            if (size != NULL) {
                *size = w;
            }
            return 0;
        }
        if (c < 0x20) {
            return -1;
        }
        if (c == '\\') {
            if (i + 1 >= n) {
                return -1;
            }
            unsigned char e = s[i + 1];
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e != 0 && simple != NULL) {
                if (out != NULL) {
                    out[w] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
                }
                w++;
                i += 2;
                continue;
            }
            if (e != 'u' || i + 6 > n) {
                return -1;
            }
            uint32_t code;
            if (hex4(s + i + 2, &code) < 0) {
                return -1;
            }
            i += 6;
            if (code >= 0xdc00 && code <= 0xdfff) {
                return -1; /* a lone low surrogate */
            }
            if (code >= 0xd800 && code <= 0xdbff) {
                uint32_t low;
                if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u' || hex4(s + i + 2, &low) < 0
                    || low < 0xdc00 || low > 0xdfff) {
                    return -1; /* a lone high surrogate */
                }
                i += 6;
                code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
            }
            char bytes[4];
            Py_ssize_t k;
            if (code < 0x80) {
                bytes[0] = (char)code;
                k = 1;
            }
            else if (code < 0x800) {
                bytes[0] = (char)(0xc0 | code >> 6);
                bytes[1] = (char)(0x80 | (code & 0x3f));
                k = 2;
            }
            else if (code < 0x10000) {
                bytes[0] = (char)(0xe0 | code >> 12);
                bytes[1] = (char)(0x80 | (code >> 6 & 0x3f));
                bytes[2] = (char)(0x80 | (code & 0x3f));
                k = 3;
            }
            else {
                bytes[0] = (char)(0xf0 | code >> 18);
                bytes[1] = (char)(0x80 | (code >> 12 & 0x3f));
                bytes[2] = (char)(0x80 | (code >> 6 & 0x3f));
                bytes[3] = (char)(0x80 | (code & 0x3f));
                k = 4;
            }
            if (out != NULL) {
                memcpy(out + w, bytes, (size_t)k);
            }
            w += k;
            continue;
        }
        Py_ssize_t k = c < 0x80 ? 1 : utf8_char(s + i, n - i);
        if (k == 0) {
            return -1;
        }
        if (out != NULL) {
            memcpy(out + w, s + i, (size_t)k);
        }
        w += k;
        i += k;
    }
    return -1; /* no closing quote */
}

/* A JSON number at s[*p] (RFC 8259's grammar); *p moves past it. */
static int
json_number(const unsigned char *s, Py_ssize_t *p, Py_ssize_t n)
{
    Py_ssize_t i = *p;
    if (i < n && s[i] == '-') {
        i++;
    }
    if (i < n && s[i] == '0') {
        i++;
    }
    else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && is_digit((char)s[i])) {
            i++;
        }
    }
    else {
        return -1;
    }
    if (i < n && s[i] == '.') {
        i++;
        Py_ssize_t digits = i;
        while (i < n && is_digit((char)s[i])) {
            i++;
        }
        if (i == digits) {
            return -1;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        Py_ssize_t digits = i;
        while (i < n && is_digit((char)s[i])) {
            i++;
        }
        if (i == digits) {
            return -1;
        }
    }
    *p = i;
    return 0;
}

#define KEY_PARTS_MAX 64

/* The key of one value: its key columns' texts joined by the separator, into buf (which it
 * resets). -1 where the Python reference decides (it may read it, or raise): anything but a
 * flat JSON object without whitespace of strings, true, false, null (and numbers, if typed),
 * or one without a key column. */
static int
value_key(Buffer *buf, const unsigned char *s, Py_ssize_t n, PyObject *names, Py_ssize_t count,
          const char *separator, Py_ssize_t separator_size, int typed)
{
    Py_ssize_t start[KEY_PARTS_MAX], stop[KEY_PARTS_MAX];
    char kind[KEY_PARTS_MAX]; /* 's' a string (decoded), 't' a token as it is, 'n' null */
    for (Py_ssize_t k = 0; k < count; k++) {
        start[k] = -1;
    }
    Py_ssize_t i = 0;
    if (n < 2 || s[0] != '{') {
        return -1;
    }
    i = 1;
    if (s[i] == '}') {
        return count ? -1 : 0;
    }
    for (;;) {
        if (i >= n || s[i] != '"') {
            return -1;
        }
        Py_ssize_t name_start = i;
        if (json_string(s, &i, n, NULL, NULL) < 0) {
            return -1;
        }
        Py_ssize_t name_size = i - name_start;
        if (i >= n || s[i] != ':') {
            return -1;
        }
        i++;
        if (i >= n) {
            return -1;
        }
        Py_ssize_t value_start = i;
        char value_kind;
        if (s[i] == '"') {
            if (json_string(s, &i, n, NULL, NULL) < 0) {
                return -1;
            }
            value_kind = 's';
        }
        else if (n - i >= 4 && memcmp(s + i, "true", 4) == 0) {
            i += 4;
            value_kind = 't';
        }
        else if (n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
            i += 5;
            value_kind = 't';
        }
        else if (n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
            i += 4;
            value_kind = 'n';
        }
        else if (s[i] == '-' || is_digit((char)s[i])) {
            if (json_number(s, &i, n) < 0) {
                return -1;
            }
            value_kind = 'd';
        }
        else {
            return -1; /* an object, an array, whitespace: the reference decides */
        }
        for (Py_ssize_t k = 0; k < count; k++) {
            PyObject *name = PyTuple_GET_ITEM(names, k);
            if (PyBytes_GET_SIZE(name) == name_size
                && memcmp(PyBytes_AS_STRING(name), s + name_start, (size_t)name_size) == 0) {
                start[k] = value_start; /* the last one of a name counts, as in json.loads */
                stop[k] = i;
                kind[k] = value_kind;
            }
        }
        if (i >= n) {
            return -1;
        }
        if (s[i] == ',') {
            i++;
            continue;
        }
        if (s[i] == '}' && i + 1 == n) {
            break;
        }
        return -1;
    }
    buf->size = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        if (start[k] < 0) {
            return -1; /* no such field: KeyError in the reference */
        }
        if (kind[k] == 'd' && !typed) {
            return -1; /* orjson reads it as a number, whose text may differ */
        }
        Py_ssize_t size = stop[k] - start[k];
        if (reserve(buf, size + separator_size) < 0) {
            return -2;
        }
        if (k > 0) {
            put(buf, separator, separator_size);
        }
        if (kind[k] == 's') {
            Py_ssize_t p = start[k], written;
            json_string(s, &p, n, buf->data + buf->size, &written);
            buf->size += written;
        }
        else if (kind[k] != 'n') {
            put(buf, (const char *)s + start[k], size);
        }
    }
    return 0;
}

PyDoc_STRVAR(value_keys_doc,
"value_keys(values, names, separator, partitions, typed)\n"
"--\n\n"
"The keys of record values and their partitions, as keys.Keyer gives them.\n\n"
"``names`` holds each key column's name as JSON (orjson.dumps), ``separator`` the UTF-8\n"
"--key-separator. A key is its columns' texts joined by the separator (a string's decoded\n"
"text, null as empty, true, false, and with ``typed`` a number, as they stand); its partition\n"
"is toPositive(murmur2(key)) % partitions, as the Java client's default partitioner picks it.\n"
"Returns ``(keys, partitions)``; where the Python reference decides (a value that is not a\n"
"flat JSON object without whitespace, or lacks a key column), the key is None and the\n"
"partition -1.");

static PyObject *
value_keys(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "value_keys() takes 5 arguments");
        return NULL;
    }
    PyObject *values = args[0];
    PyObject *names = args[1];
    PyObject *separator = args[2];
    if (!PyList_Check(values) || !PyTuple_Check(names) || !PyBytes_Check(separator)) {
        PyErr_SetString(PyExc_TypeError,
                        "value_keys(list[bytes], tuple[bytes, ...], bytes, int, bool)");
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    if (count < 1 || count > KEY_PARTS_MAX) {
        PyErr_SetString(PyExc_ValueError, "value_keys(): 1 to 64 key columns");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(names, k))) {
            PyErr_SetString(PyExc_TypeError, "value_keys(): names must be bytes");
            return NULL;
        }
    }
    long long partitions = PyLong_AsLongLong(args[3]);
    int typed = PyObject_IsTrue(args[4]);
    if (PyErr_Occurred() || typed < 0) {
        return NULL;
    }
    if (partitions < 1 || partitions > 0x7fffffffLL) {
        PyErr_SetString(PyExc_ValueError, "value_keys(): a topic has at least one partition");
        return NULL;
    }
    Py_ssize_t rows = PyList_GET_SIZE(values);
    PyObject *keys = PyList_New(rows);
    PyObject *chosen = PyList_New(rows);
    Buffer buf = {NULL, 0, 0};
    if (keys == NULL || chosen == NULL) {
        goto failed;
    }
    const char *sep = PyBytes_AS_STRING(separator);
    Py_ssize_t sep_size = PyBytes_GET_SIZE(separator);
    for (Py_ssize_t r = 0; r < rows; r++) {
        PyObject *value = PyList_GET_ITEM(values, r);
        if (!PyBytes_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "value_keys(): values must be bytes");
            goto failed;
        }
        int outcome = value_key(&buf, (const unsigned char *)PyBytes_AS_STRING(value),
                                PyBytes_GET_SIZE(value), names, count, sep, sep_size, typed);
        if (outcome == -2) {
            goto failed;
        }
        PyObject *key;
        long partition;
        if (outcome < 0) {
            key = Py_NewRef(Py_None);
            partition = -1;
        }
        else {
            key = PyBytes_FromStringAndSize(buf.data, buf.size);
            if (key == NULL) {
                goto failed;
            }
            uint32_t hash = murmur2((const unsigned char *)buf.data, buf.size);
            partition = (long)((hash & 0x7fffffffu) % (uint32_t)partitions);
        }
        PyList_SET_ITEM(keys, r, key);
        PyObject *number = PyLong_FromLong(partition);
        if (number == NULL) {
            goto failed;
        }
        PyList_SET_ITEM(chosen, r, number);
    }
    PyMem_Free(buf.data);
    return Py_BuildValue("(NN)", keys, chosen);

failed:
    PyMem_Free(buf.data);
    Py_XDECREF(keys);
    Py_XDECREF(chosen);
    return NULL;
}

PyDoc_STRVAR(murmur2_doc,
"murmur2(data)\n"
"--\n\n"
"Kafka's Utils.murmur2(data), a signed 32-bit int as Java returns it (value_keys' hash).");

static PyObject *
murmur2_py(PyObject *module, PyObject *data)
{
    (void)module;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "murmur2(bytes)");
        return NULL;
    }
    uint32_t hash = murmur2((const unsigned char *)PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
    return PyLong_FromLong((long)(int32_t)hash);
}

static PyMethodDef methods[] = {
    {"encode_block", (PyCFunction)(void (*)(void))encode_block, METH_FASTCALL, encode_block_doc},
    {"murmur2", (PyCFunction)murmur2_py, METH_O, murmur2_doc},
    {"value_keys", (PyCFunction)(void (*)(void))value_keys, METH_FASTCALL, value_keys_doc},
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
