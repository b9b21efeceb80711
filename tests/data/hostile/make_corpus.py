"""Writes the hostile CSV corpus of fault 12 and its manifest: ``python make_corpus.py``.

Each file is built from pieces whose byte lengths give the documented outcome independently of
csv-to-kafka's parser:

- ``copy``: exit 0, and the topic holds exactly the rows Python's csv module reads;
- ``bad``: exit 3 with a message naming ``line`` (where the bad row starts) and ``offset`` (the
  byte where it starts; for bytes invalid in the encoding, the first such byte), the rows before
  it committed, nothing from it on sent; ``message`` is a fragment of the reason.

The big cases (a 50 MB field, a 1 GB line, 10,000 columns, a 500 KB field) are not files: the
test generates and streams them (``tests/reliability/test_hostile_input.py``). The files here are
small and committed; rerunning this script rewrites them identically.
"""

from __future__ import annotations

import bz2
import gzip
import json
import random
from pathlib import Path
from typing import Any

import zstandard

HERE = Path(__file__).resolve().parent
BOM = b"\xef\xbb\xbf"


def rows(n: int, start: int = 1, eol: bytes = b"\n") -> bytes:
    return b"".join(b"%d,name %d,%d.5%s" % (i, i, i * 7, eol) for i in range(start, start + n))


HEADER = b"id,name,amount\n"
GOOD = HEADER + rows(20)  # lines 1-21; the next row starts on line 22 at byte len(GOOD)
NEXT = 22

CASES: dict[str, dict[str, Any]] = {}


def copy(name: str, data: bytes, why: str, **options: Any) -> None:
    CASES[name] = {"data": data, "outcome": "copy", "why": why, **options}


def bad(
    name: str,
    data: bytes,
    why: str,
    *,
    line: int,
    offset: int,
    message: str,
    row_start: int | None = None,
    **options: Any,
) -> None:
    """``row_start``: where the bad row starts, when ``offset`` is an invalid byte inside it."""
    CASES[name] = {
        "data": data,
        "outcome": "bad",
        "why": why,
        "line": line,
        "offset": offset,
        "row_start": offset if row_start is None else row_start,
        "message": message,
        **options,
    }


# -- read correctly: a correct copy --------------------------------------------------------------

copy("crlf.csv", HEADER.replace(b"\n", b"\r\n") + rows(30, eol=b"\r\n"), "CRLF line ends")
copy("bom.csv", BOM + GOOD, "a UTF-8 byte order mark before the header")
copy(
    "bom_crlf_quoted.csv",
    BOM + b'id,text\r\n1,"two\r\nlines"\r\n2,"a ""quoted"" word"\r\n3,plain\r\n',
    "BOM, CRLF, a CRLF inside quotes and doubled quotes",
)
copy("no_final_newline.csv", GOOD + b"21,last,1", "the last row has no newline")
copy(
    "quoted_newlines.csv",
    b"id,note\n"
    + b"".join(b'%d,"line one %d\nline two\n\nline four"\n' % (i, i) for i in range(1, 40)),
    "quoted fields spanning several lines, one of them empty",
)
copy(
    "quoted_delimiters_and_quotes.csv",
    b'id,a,b\n1,"x,y","say ""hi"""\n2,"","\n"\n3,""""," , "\n',
    "quoted commas, doubled quotes, a field that is only a quote, a quoted newline alone",
)
copy(
    "blank_lines.csv",
    b"id,v\n\n1,a\n\n\n2,b\n\r\n3,c\n\n",
    "blank lines (LF and CRLF) between rows and at the end are skipped, lines still counted",
)
copy("empty_fields.csv", b"a,b,c\n,,\n1,,\n,,3\n", "empty fields and a row of empty fields")
copy("whitespace.csv", b"a,b\n  1  , two \n\t3\t,four  \n", "spaces and tabs around fields kept")
copy("nul_bytes.csv", b"a,b\n1,x\x00y\n2,\x00\n", "NUL characters inside fields (valid UTF-8)")
copy(
    "non_ascii.csv",
    "id,text\n1,Zoë naïve café\n2,日本語のテキスト\n3,emoji 🎉🚀 and ZWJ 👩‍💻\n"
    "4,עברית ومعها العربية\n5,combining e\u0301 and \u00e9\n".encode(),
    "2-, 3- and 4-byte UTF-8, right-to-left text, combining marks",
)
copy("header_only.csv", b"id,name\n", "a header and no rows: 0 records")
copy("header_only_no_newline.csv", b"id,name", "a header without a newline: 0 records")
copy(
    "quoted_header.csv",
    b'"id","name, full","say ""x"""\n1,a,b\n',
    "quoted header names with a comma and quotes",
)
copy(
    "unicode_header.csv",
    "名前,värde,ключ\nα,β,γ\n".encode(),  # noqa: RUF001 (Greek letters on purpose)
    "non-ASCII header names",
)
# Header names that would be code if they were ever pasted into Python source unquoted.
PWNED = "/tmp/csv-to-kafka-pwned"
_NAMES = [
    "a'b",
    'x"y',
    "back\\slash",
    "'''",
    '"""',
    "}",
    "{",
    "r[0]",
    f"__import__('os').system('touch {PWNED}')",
    f"'}}); __import__('os').system('touch {PWNED}'); ({{'",
    "line\nbreak",
    "tab\tand\rcr",
]
copy(
    "header_names_like_code.csv",
    (
        ",".join('"' + name.replace('"', '""') + '"' for name in _NAMES)
        + "\n"
        + ",".join(str(i) for i in range(len(_NAMES)))
        + "\n"
    ).encode(),
    "header names made of quotes, braces and Python code: data, never code",
)
copy("single_column.csv", b'only\na\n""\nb\n', "one column; a quoted empty field is a row")
copy(
    "semicolon.csv",
    b'id;name\n1;"a;b"\n2;c,d\n',
    "--delimiter ';'",
    args=["--delimiter", ";"],
    fmt={"delimiter": ";"},
)
copy(
    "tab.tsv",
    b'id\tname\n1\t"a\tb"\n2\tc d\n',
    "--delimiter TAB",
    args=["--delimiter", "\t"],
    fmt={"delimiter": "\t"},
)
copy(
    "latin1.csv",
    "id,name\n1,Zoë\n2,façade\n".encode("latin-1"),
    "--encoding latin-1",
    args=["--encoding", "latin-1"],
    fmt={"encoding": "latin-1"},
)
copy(
    "cr_inside_quotes.csv",
    b'id,v\n1,"a\rb"\n2,"\r"\n',
    "a lone CR inside a quoted field is data",
)

# -- refused: exit 3, the rows before it committed, nothing from it on --------------------------

bad("empty.csv", b"", "a 0-byte object", line=1, offset=0, message="empty")
bad("bom_only.csv", BOM, "nothing but a BOM", line=1, offset=0, message="no header row")
bad(
    "ragged_more_fields.csv",
    GOOD + b"21,x,1,extra\n" + rows(5, 22),
    "a row with more fields than the header",
    line=NEXT,
    offset=len(GOOD),
    message="row has 4 fields but the header has 3",
)
bad(
    "ragged_fewer_fields.csv",
    GOOD + b"21,x\n" + rows(5, 22),
    "a row with fewer fields than the header",
    line=NEXT,
    offset=len(GOOD),
    message="row has 2 fields but the header has 3",
)
bad(
    "unbalanced_quote_at_end.csv",
    GOOD + b'21,"never closed,1\n22,x,2\n',
    "a quote opened and never closed",
    line=NEXT,
    offset=len(GOOD),
    message="never closed",
)
bad(
    "text_after_closing_quote.csv",
    GOOD + b'21,"x"y,1\n22,x,2\n',
    'text after a closing quote ("x"y)',
    line=NEXT,
    offset=len(GOOD),
    message="not valid CSV",
)
bad(
    "lone_cr_unquoted.csv",
    GOOD + b"21,a\rb,1\n22,x,2\n",
    "a lone CR inside an unquoted field",
    line=NEXT,
    offset=len(GOOD),
    message="carriage return",
)
bad(
    "cr_only_line_ends.csv",
    b"id,name\r1,a\r2,b\r",
    "classic Mac CR-only line ends: the header line already has a lone CR",
    line=1,
    offset=0,
    message="carriage return",
)
bad(
    "invalid_utf8_row.csv",
    GOOD + b"21,caf\xe9,1\n22,x,2\n",
    "a Latin-1 byte in a UTF-8 file",
    line=NEXT,
    offset=len(GOOD) + len(b"21,caf"),
    row_start=len(GOOD),
    message="not valid utf-8",
)
bad(
    "invalid_utf8_in_quoted_multiline.csv",
    b'id,note\n1,ok\n2,"first\nsecond \xff\nthird"\n3,x\n',
    "an invalid byte on the second line of a quoted multi-line field",
    line=3,
    offset=len(b'id,note\n1,ok\n2,"first\nsecond '),
    row_start=len(b"id,note\n1,ok\n"),
    message="not valid utf-8",
)
bad(
    "truncated_utf8_at_end.csv",
    GOOD + b"21,\xe2\x82",
    "a multi-byte character cut off at the end of the object",
    line=NEXT,
    offset=len(GOOD) + 3,
    row_start=len(GOOD),
    message="not valid utf-8",
)
bad(
    "header_not_utf8.csv",
    b"id,nom,pr\xe9nom\n1,a,b\n",
    "a header that is not UTF-8",
    line=1,
    offset=len(b"id,nom,pr"),
    row_start=0,
    message="not valid utf-8",
)
bad(
    "utf16_with_bom.csv",
    "id,name\n1,a\n".encode("utf-16"),
    "UTF-16 (FF FE byte order mark)",
    line=1,
    offset=0,
    message="not valid utf-8",
)
bad(
    "duplicate_header_names.csv",
    b"id,name,id\n1,a,2\n",
    "a header naming one column twice",
    line=1,
    offset=0,
    message="twice",
)
bad(
    "empty_header_name.csv",
    b"id,,name\n1,2,3\n",
    "a header with an empty name",
    line=1,
    offset=0,
    message="empty name",
)
bad(
    "metadata_field_in_header.csv",
    b"id,_source_file\n1,x\n",
    "a header column named like a field csv-to-kafka adds",
    line=1,
    offset=0,
    message="_source_file",
)
_garbage = random.Random(12).randbytes(4096)
bad(
    "binary_garbage.csv",
    b"\xff" + _garbage,
    "binary garbage",
    line=1,
    offset=0,
    message="not valid utf-8",
)
bad(
    "garbage_after_good_rows.csv",
    GOOD + b"\x00\x9f\x92\x96" + _garbage[:256],
    "good rows, then binary garbage",
    line=NEXT,
    offset=len(GOOD) + 1,
    row_start=len(GOOD),
    message="not valid utf-8",
)


# -- compressed objects (issue 13): found by their first bytes, whatever their name -----------
# ``compressed``: the rows (and ``row_start``, ``line``) are those of the decoded bytes. A
# decoder's error names no line: its byte offset is the compressed offset, in the stored object,
# of the gzip member or zstd frame that broke (``names_line`` false).

_ZSTD = zstandard.ZstdCompressor(level=3, write_checksum=True)
_MORE = HEADER + rows(60)

copy(
    "gzip_named_csv.csv",
    gzip.compress(GOOD, mtime=0),
    "a gzip file named .csv (as uploaded with Content-Encoding: gzip)",
    compressed=True,
)
copy(
    "gzip_multi_member.csv",
    b"".join(gzip.compress(_MORE[i : i + 500], mtime=0) for i in range(0, len(_MORE), 500)),
    "gzip members cut in the middle of rows (pigz, bgzip, cat a.gz b.gz)",
    compressed=True,
)
copy(
    "zstd_frames.csv",
    b"".join(_ZSTD.compress(_MORE[i : i + 700]) for i in range(0, len(_MORE), 700)),
    "zstd frames cut in the middle of rows",
    compressed=True,
)
copy(
    "bzip2_streams.csv",
    bz2.compress(_MORE[:1000]) + bz2.compress(_MORE[1000:]),
    "two concatenated bzip2 streams",
    compressed=True,
)
copy(
    "gzip_bomb.csv",
    gzip.compress(GOOD + b"\n" * 20_000_000 + rows(3, start=21), 9, mtime=0),
    "a gzip of 20 MB of blank lines between rows (1000:1): decoded in bounded pieces",
    compressed=True,
)
bad(
    "gzip_of_empty_file.csv",
    gzip.compress(b"", mtime=0),
    "a gzip of an empty file: an empty object",
    line=1,
    offset=0,
    message="empty",
    compressed=True,
)
bad(
    "gzip_empty.csv",
    gzip.compress(b"", mtime=0)[:10],
    "a gzip header and nothing after it",
    line=1,
    offset=0,
    message="truncated",
    compressed=True,
    names_line=False,
)
_first_member = gzip.compress(GOOD, mtime=0)
_second_member = gzip.compress(rows(20, start=21), mtime=0)
bad(
    "gzip_truncated.csv",
    _first_member + _second_member[:12],
    "a gzip whose second member is cut short: the first member's rows are copied",
    line=NEXT,
    offset=len(_first_member),
    row_start=len(GOOD),
    message="truncated",
    compressed=True,
    names_line=False,
)
_first_frame = _ZSTD.compress(GOOD)
bad(
    "zstd_corrupt_frame.csv",
    _first_frame + b"\x28\xb5\x2f\xfe" + _ZSTD.compress(rows(20, start=21))[4:],
    "a zstd frame with a broken magic number after a good one: the good frame's rows are copied",
    line=NEXT,
    offset=len(_first_frame),
    row_start=len(GOOD),
    message="corrupt",
    compressed=True,
    names_line=False,
)

# Empty members, frames and streams (issue 13): between real ones they are read through; an
# object made of nothing else is empty once decoded: exit 3 when it is the job's only object
# (skipped inside a prefix: tests/integration/test_objects.py).
_EMPTY_GZIP = gzip.compress(b"", mtime=0)
_EMPTY_ZSTD = _ZSTD.compress(b"")
_EMPTY_BZIP2 = bz2.compress(b"")
copy(
    "gzip_empty_members.csv",
    _EMPTY_GZIP
    + gzip.compress(_MORE[:300], mtime=0)
    + _EMPTY_GZIP * 2
    + gzip.compress(_MORE[300:], mtime=0)
    + _EMPTY_GZIP,
    "empty gzip members before, between and after real ones (a writer flushing nothing)",
    compressed=True,
)
copy(
    "zstd_empty_frames.csv",
    _EMPTY_ZSTD + _ZSTD.compress(_MORE[:300]) + _EMPTY_ZSTD * 2 + _ZSTD.compress(_MORE[300:]),
    "empty zstd frames before and between real ones",
    compressed=True,
)
copy(
    "bzip2_empty_stream.csv",
    bz2.compress(_MORE[:300]) + _EMPTY_BZIP2 + bz2.compress(_MORE[300:]) + _EMPTY_BZIP2,
    "an empty bzip2 stream between two real ones, and one at the end",
    compressed=True,
)
for _name, _empty, _what in (
    ("gzip_only_empty_members.csv", _EMPTY_GZIP * 3, "three empty gzip members"),
    ("zstd_only_empty_frames.csv", _EMPTY_ZSTD * 3, "three empty zstd frames"),
    ("bzip2_only_empty_stream.csv", _EMPTY_BZIP2, "one empty bzip2 stream"),
):
    bad(
        _name,
        _empty,
        f"{_what} and nothing else: empty once decoded, the job's only object",
        line=1,
        offset=0,
        message="the object is empty",
        compressed=True,
    )


def main() -> None:
    manifest = {}
    for name, case in CASES.items():
        data = case.pop("data")
        (HERE / name).write_bytes(data)
        manifest[name] = case
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    print(f"{len(manifest)} files in {HERE}")


if __name__ == "__main__":
    main()
