# cython: language_level=3, boundscheck=True, wraparound=False, initializedcheck=True
"""Compiled fast paths of the tail decoders (``formats.CriDecoder`` / ``DockerDecoder``).

Only the tight per-line loop lives here: for the common line (containerd ``F`` line, or a
Docker json-file object of exactly ``{"log":...,"stream":...,"time":...}``) it builds the
same record the Python fast path builds. Every line this code is not sure about -- an odd
key order, a partial piece, a bad timestamp, invalid UTF-8, a lone surrogate, a line over
``max_line_bytes`` -- is handed, alone, to the pure-Python loop (``fallback``), which applies
the full rules. So the Python implementation stays the one definition of behaviour, and
this module only has to be identical to it on the lines it accepts (the differential tests
check that).

The input is untrusted bytes: every read goes through an index checked against the line's
length first, the escape decoder never writes more bytes than it has read, and the scratch
buffer is sized to the longest line before any write.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Contains, PyDict_Copy, PyDict_SetItem
from cpython.list cimport PyList_Append
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.string cimport memcmp, memcpy

from shipper.record import Record

# A Record's four slots, set directly: a call of the dataclass's Python ``__init__`` costs
# more than the rest of a line's decoding. ``RECORD_FIELDS`` is what this assumes (a test
# compares it with the dataclass, so a new field cannot be silently left unset).
RECORD_FIELDS = ("body", "time_ns", "tag", "doc_id")
cdef object _new = object.__new__


cdef inline object _record(object body, long long time_ns, object tag, object doc_id):
    record = _new(Record)
    record.body = body
    record.time_ns = time_ns
    record.tag = tag
    record.doc_id = doc_id
    return record

# ``timestamps.head_ns``, imported on first use: importing the tail package from here
# would be circular (``formats`` imports this module through ``shipper.speedups``).
cdef object head_ns = None


cdef _init():
    global head_ns
    from shipper.sources.tail.timestamps import head_ns as function
    head_ns = function

from libc.stdio cimport snprintf

cdef extern from "Python.h":
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)
    object PyUnicode_DecodeLatin1(const char *s, Py_ssize_t size, const char *errors)

cdef long long _SCALE[10]
_SCALE[:] = [0, 100000000, 10000000, 1000000, 100000, 10000, 1000, 100, 10, 1]

cdef str STDOUT = "stdout"
cdef str STDERR = "stderr"
cdef str K_LOG = "log"
cdef str K_STREAM = "stream"
cdef str K_TIME = "time"

IMPLEMENTATION = "compiled"


cdef class _Ids:
    """``doc_id(identity, offset)`` -- ``"<identity>-<offset in hex>"`` -- built in C."""
    cdef object ident
    cdef bytes prefix  # "<identity>-" when the identity is ASCII (it is hex), else None

    def __cinit__(self, ident):
        self.ident = ident
        try:
            self.prefix = (ident + "-").encode("ascii")
        except (UnicodeEncodeError, TypeError, AttributeError):
            self.prefix = None

    cdef object make(self, Py_ssize_t offset):
        cdef char out[128]
        cdef Py_ssize_t k
        cdef int m
        if self.prefix is None or len(self.prefix) > 100:
            return f"{self.ident}-{offset:x}"
        k = len(self.prefix)
        memcpy(out, <const char *>self.prefix, k)
        m = snprintf(out + k, 128 - k, "%llx", <unsigned long long>offset)
        if m < 0 or m >= 128 - k or offset < 0:
            return f"{self.ident}-{offset:x}"
        return PyUnicode_DecodeLatin1(out, k + m, NULL)


cdef object _time_str(const char *head, long long nanos):
    """``"<head>.<9 digits>Z"`` for a fraction that was written with fewer digits."""
    cdef char out[40]
    cdef int m = snprintf(out, 40, "%.19s.%09lldZ", head, nanos)
    if m != 30:
        raise ValueError("bad time")
    return PyUnicode_DecodeLatin1(out, 30, NULL)


cdef class _Heads:
    """The last ``YYYY-MM-DDTHH:MM:SS`` head seen and its nanoseconds (a file's lines share
    one second for thousands of lines); misses go to ``timestamps.head_ns``."""
    cdef char head[19]
    cdef long long base
    cdef bint valid

    def __cinit__(self):
        self.valid = False

    cdef int lookup(self, const char *p, bint as_bytes, long long *out) except -1:
        """1 and ``*out`` set when the 19 bytes at ``p`` are a valid head, else 0."""
        if self.valid and memcmp(p, self.head, 19) == 0:
            out[0] = self.base
            return 1
        if as_bytes:
            key = p[:19]
        else:
            key = PyUnicode_DecodeLatin1(p, 19, NULL)
        value = head_ns(key)
        # Years far from now (before ~1824 or after ~2116) do not fit the 64-bit sums
        # below: those lines take the Python loop, whose integers have no limit.
        if value is None or not (-4611686018427387904 <= value < 4611686018427387904):
            return 0
        memcpy(self.head, p, 19)
        self.base = value
        self.valid = True
        out[0] = self.base
        return 1


cdef inline bint _digits(const unsigned char *p, Py_ssize_t n, long long *out):
    cdef long long v = 0
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] < 48 or p[i] > 57:
            return False
        v = v * 10 + (p[i] - 48)
    out[0] = v
    return True


def decode_cri(decoder, list lines, Py_ssize_t offset, fallback):
    """``CriDecoder.decode`` without a multiline rule: same records, same state."""
    cdef list records = []
    cdef dict template = decoder.template
    cdef dict partials = decoder.partials.groups
    cdef object tag = decoder.tag
    cdef object ident = decoder.identity
    cdef Py_ssize_t max_bytes = decoder.max_bytes
    cdef Py_ssize_t end = offset, start, n, i, s1, s2, s3
    cdef const unsigned char *p
    cdef long long base = 0, frac = 0, carry = 0
    cdef bint have_carry = False
    cdef _Heads heads = _Heads()
    cdef _Ids ids = _Ids(ident)
    if head_ns is None:
        _init()
    cdef object line, stream, text, body
    for line in lines:
        start = end
        if not PyBytes_CheckExact(line):
            raise TypeError("lines must be bytes")
        n = PyBytes_GET_SIZE(line)
        end += n + 1
        p = <const unsigned char *>PyBytes_AS_STRING(line)
        # "<30-byte ts> <stdout|stderr> F <content>": find the first three spaces.
        s1 = s2 = s3 = -1
        i = 0
        while i < n:
            if p[i] == 32:
                if s1 < 0:
                    s1 = i
                elif s2 < 0:
                    s2 = i
                else:
                    s3 = i
                    break
            i += 1
        if (s3 == s2 + 2 and s1 == 30 and p[s2 + 1] == 70  # F
                and p[29] == 90 and p[19] == 46 and n - s3 - 1 <= max_bytes
                and not (n > s3 + 1 and p[n - 1] == 13)):
            stream = None
            if s2 - s1 - 1 == 6:
                if memcmp(p + s1 + 1, b"stdout", 6) == 0:
                    stream = STDOUT
                elif memcmp(p + s1 + 1, b"stderr", 6) == 0:
                    stream = STDERR
            if (stream is not None and _digits(p + 20, 9, &frac)
                    and heads.lookup(<const char *>p, True, &base)
                    and not PyDict_Contains(partials, stream)):
                try:
                    text = PyUnicode_DecodeUTF8(<const char *>p + s3 + 1, n - s3 - 1, NULL)
                except UnicodeDecodeError:
                    text = None
                if text is not None:
                    body = PyDict_Copy(template)
                    PyDict_SetItem(body, K_LOG, text)
                    PyDict_SetItem(body, K_STREAM, stream)
                    PyDict_SetItem(body, K_TIME, PyUnicode_DecodeLatin1(<const char *>p, 30, NULL))
                    carry = base + frac
                    have_carry = True
                    PyList_Append(records, _record(body, carry, tag, ids.make(start)))
                    continue
        if have_carry:
            decoder.carry_ns = carry
            decoder.initial = False
            have_carry = False
        more, _ = fallback([line], start)
        records.extend(more)
    if have_carry:
        decoder.carry_ns = carry
        decoder.initial = False
    return records, end


cdef inline int _hex4(const unsigned char *p) noexcept:
    """The value of four hex digits, or -1."""
    cdef int v = 0, i, c
    for i in range(4):
        c = p[i]
        if 48 <= c <= 57:
            c -= 48
        elif 97 <= c <= 102:
            c -= 87
        elif 65 <= c <= 70:
            c -= 55
        else:
            return -1
        v = v * 16 + c
    return v


cdef Py_ssize_t _unescape(const unsigned char *p, Py_ssize_t i, Py_ssize_t n,
                          unsigned char *out, Py_ssize_t *written) noexcept:
    """Decode the JSON string body starting at ``p[i]`` (after its opening quote) into
    ``out`` (room for ``n - i`` bytes); return the index after the closing quote, or -1 for
    anything the fast path does not take (control characters, lone surrogates, bad
    escapes, no closing quote). Writes never outrun reads: an escape of k input bytes
    yields at most k output bytes."""
    cdef Py_ssize_t w = 0
    cdef unsigned char c
    cdef int cp, lo
    while i < n:
        c = p[i]
        if c == 34:  # closing quote
            written[0] = w
            return i + 1
        if c < 32:
            return -1
        if c != 92:
            out[w] = c
            w += 1
            i += 1
            continue
        if i + 1 >= n:
            return -1
        c = p[i + 1]
        i += 2
        if c == 110:
            out[w] = 10
        elif c == 34 or c == 92 or c == 47:
            out[w] = c
        elif c == 116:
            out[w] = 9
        elif c == 114:
            out[w] = 13
        elif c == 98:
            out[w] = 8
        elif c == 102:
            out[w] = 12
        elif c == 117:
            if i + 4 > n:
                return -1
            cp = _hex4(p + i)
            if cp < 0:
                return -1
            i += 4
            if 0xDC00 <= cp <= 0xDFFF:
                return -1
            if 0xD800 <= cp <= 0xDBFF:
                if i + 6 > n or p[i] != 92 or p[i + 1] != 117:
                    return -1
                lo = _hex4(p + i + 2)
                if lo < 0xDC00 or lo > 0xDFFF:
                    return -1
                i += 6
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
            if cp < 0x80:
                out[w] = cp
            elif cp < 0x800:
                out[w] = 0xC0 | (cp >> 6)
                out[w + 1] = 0x80 | (cp & 0x3F)
                w += 1
            elif cp < 0x10000:
                out[w] = 0xE0 | (cp >> 12)
                out[w + 1] = 0x80 | ((cp >> 6) & 0x3F)
                out[w + 2] = 0x80 | (cp & 0x3F)
                w += 2
            else:
                out[w] = 0xF0 | (cp >> 18)
                out[w + 1] = 0x80 | ((cp >> 12) & 0x3F)
                out[w + 2] = 0x80 | ((cp >> 6) & 0x3F)
                out[w + 3] = 0x80 | (cp & 0x3F)
                w += 3
        else:
            return -1
        w += 1
    return -1


cdef inline Py_ssize_t _plain(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Index of the closing quote of a printable-ASCII string without escapes, or -1."""
    while i < n:
        if p[i] == 34:
            return i
        if p[i] < 32 or p[i] > 126 or p[i] == 92:
            return -1
        i += 1
    return -1


def decode_docker(decoder, list lines, Py_ssize_t offset, fallback):
    """``DockerDecoder.decode`` without a multiline rule: same records, same state."""
    cdef list records = []
    cdef dict template = decoder.template
    cdef dict partials = decoder.partials.groups
    cdef object tag = decoder.tag
    cdef object ident = decoder.identity
    cdef Py_ssize_t max_bytes = decoder.max_bytes
    cdef Py_ssize_t end = offset, start, n, i, j, k, w = 0, digits, size = 0
    cdef const unsigned char *p
    cdef unsigned char *buf = NULL
    cdef unsigned char *grown
    cdef long long base = 0, frac = 0, carry = 0, time_ns = 0
    cdef bint have_carry = False
    cdef _Heads heads = _Heads()
    cdef _Ids ids = _Ids(ident)
    if head_ns is None:
        _init()
    cdef object line, stream, text, body, ts
    try:
        for line in lines:
            start = end
            if not PyBytes_CheckExact(line):
                raise TypeError("lines must be bytes")
            n = PyBytes_GET_SIZE(line)
            end += n + 1
            p = <const unsigned char *>PyBytes_AS_STRING(line)
            if n > size:
                grown = <unsigned char *>PyMem_Realloc(buf, n + 1)
                if grown == NULL:
                    raise MemoryError()
                buf = grown
                size = n
            text = None
            # {"log":"<escaped>","stream":"stdout|stderr","time":"<ts>"} and nothing else
            if n <= max_bytes and n > 8 and memcmp(p, b'{"log":"', 8) == 0:
                i = _unescape(p, 8, n, buf, &w)
                # The message must end in LF with no CR before it (else: a piece, or CRLF).
                if (i > 0 and w >= 1 and buf[w - 1] == 10 and not (w >= 2 and buf[w - 2] == 13)
                        and i + 11 <= n and memcmp(p + i, b',"stream":"', 11) == 0):
                    i += 11
                    j = _plain(p, i, n)
                    stream = None
                    if j - i == 6:
                        if memcmp(p + i, b"stdout", 6) == 0:
                            stream = STDOUT
                        elif memcmp(p + i, b"stderr", 6) == 0:
                            stream = STDERR
                    j += 1
                    if (stream is not None and j + 9 <= n
                            and memcmp(p + j, b',"time":"', 9) == 0):
                        j += 9
                        k = _plain(p, j, n)  # k: closing quote of the time
                        # "YYYY-MM-DDTHH:MM:SS.<1-9 digits>Z" then "}" ending the line
                        digits = k - j - 21
                        if (k >= 0 and k + 2 == n and p[k + 1] == 125 and 1 <= digits <= 9
                                and p[j + 19] == 46 and p[k - 1] == 90
                                and _digits(p + j + 20, digits, &frac)
                                and heads.lookup(<const char *>p + j, False, &base)
                                and not PyDict_Contains(partials, stream)):
                            try:
                                text = PyUnicode_DecodeUTF8(<const char *>buf, w - 1, NULL)
                            except UnicodeDecodeError:
                                text = None
                            if text is not None:
                                frac *= _SCALE[digits]
                                time_ns = base + frac
                                if digits == 9:
                                    ts = PyUnicode_DecodeLatin1(<const char *>p + j, 30, NULL)
                                else:
                                    ts = _time_str(<const char *>p + j, frac)
            if text is not None:
                body = PyDict_Copy(template)
                PyDict_SetItem(body, K_LOG, text)
                PyDict_SetItem(body, K_STREAM, stream)
                PyDict_SetItem(body, K_TIME, ts)
                carry = time_ns
                have_carry = True
                PyList_Append(records, _record(body, time_ns, tag, ids.make(start)))
                continue
            if have_carry:
                decoder.carry_ns = carry
                decoder.initial = False
                have_carry = False
            more, _ = fallback([line], start)
            records.extend(more)
    finally:
        PyMem_Free(buf)
    if have_carry:
        decoder.carry_ns = carry
        decoder.initial = False
    return records, end


# -- bulk payloads (outputs.elasticsearch.request.BulkEncoder.encode) ----------------------

cdef extern from "Python.h":
    object PyBytes_FromStringAndSize(const char *v, Py_ssize_t n)
    char *PyBytes_AsString(object o) except NULL
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1

from cpython.unicode cimport PyUnicode_CheckExact

cdef str K_TIMESTAMP = "@timestamp"
cdef long long NS_PER_SEC = 1000000000


def encode_bulk(list records, dict second_parts, parts_for, serialize, one):
    """``BulkEncoder.encode`` without an ``id_key``: the same payloads, each built with one
    allocation. A record outside the common case (no id, ``{}`` body, its own
    ``@timestamp``, a time before 1970 or beyond 64 bits) goes, alone, to ``one``."""
    cdef list out = []
    cdef object record, body, source, doc_id, idj, parts, p0, p1
    cdef long long time_ns, seconds, nanos, last_seconds = -1
    cdef int overflow
    cdef Py_ssize_t n_src, n_id, n0, n1, total, k, q
    cdef const char *src
    cdef const char *ids
    cdef char *w
    cdef bint plain
    cdef bytes payload
    cdef bytes idb
    p0 = p1 = None
    for record in records:
        body = record.body
        doc_id = record.doc_id
        source = serialize(body)
        if (doc_id is None or not PyBytes_CheckExact(source) or PyBytes_GET_SIZE(source) < 3
                or K_TIMESTAMP in body):
            out.append(one(record, source))
            continue
        time_ns = PyLong_AsLongLongAndOverflow(record.time_ns, &overflow)
        if overflow or time_ns < 0:
            out.append(one(record, source))
            continue
        seconds = time_ns // NS_PER_SEC
        nanos = time_ns - seconds * NS_PER_SEC
        if seconds != last_seconds or p0 is None:
            parts = second_parts.get(seconds) or parts_for(seconds)
            p0, p1 = parts
            if not (PyBytes_CheckExact(p0) and PyBytes_CheckExact(p1)):
                raise TypeError("cached parts must be bytes")
            last_seconds = seconds
        # The id in JSON: itself in quotes when plain printable ASCII, else orjson's spelling.
        plain = False
        if PyUnicode_CheckExact(doc_id) and (<str>doc_id).isascii():
            idb = (<str>doc_id).encode("ascii")
            ids = PyBytes_AS_STRING(idb)
            n_id = PyBytes_GET_SIZE(idb)
            plain = True
            for k in range(n_id):
                if ids[k] < 32 or ids[k] > 126 or ids[k] == 34 or ids[k] == 92:
                    plain = False
                    break
        if not plain:
            out.append(one(record, source))
            continue
        src = PyBytes_AS_STRING(source)
        n_src = PyBytes_GET_SIZE(source)
        n0 = PyBytes_GET_SIZE(p0)
        n1 = PyBytes_GET_SIZE(p1)
        # p0 "<id>" p1 <9 digits> Z", <source without its "{"> \n
        total = n0 + n_id + 2 + n1 + 9 + 3 + (n_src - 1) + 1
        payload = PyBytes_FromStringAndSize(NULL, total)
        w = PyBytes_AsString(payload)
        q = 0
        memcpy(w + q, PyBytes_AS_STRING(p0), n0)
        q += n0
        w[q] = 34
        q += 1
        memcpy(w + q, ids, n_id)
        q += n_id
        w[q] = 34
        q += 1
        memcpy(w + q, PyBytes_AS_STRING(p1), n1)
        q += n1
        for k in range(8, -1, -1):
            w[q + k] = <char>(48 + nanos % 10)
            nanos //= 10
        q += 9
        w[q] = 90
        w[q + 1] = 34
        w[q + 2] = 44
        q += 3
        memcpy(w + q, src + 1, n_src - 1)
        q += n_src - 1
        w[q] = 10
        q += 1
        if q != total:
            raise AssertionError("payload size")
        out.append(payload)
    return out
