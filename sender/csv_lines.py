"""Reading a CSV file line by line in whatever encoding it was saved in.

Each line is decoded on its own, so a byte that is not valid in the encoding is reported
with its line number (``Lines.bad``) and every other line still reads; UTF-16 and UTF-32
files are split only where a newline starts on a character boundary. The bytes read are
counted for a progress bar. The import (``lists.py``) reads its files through here.
"""

from __future__ import annotations

import codecs
import io
import sys
from contextlib import contextmanager

from .columns import ImportFailed


class _CountingReader(io.RawIOBase):
    """Counts bytes read, for a progress bar, while the text layer streams on top."""

    def __init__(self, raw, progress):
        self._raw, self._progress = raw, progress

    def readable(self):
        return True

    def close(self):
        self._raw.close()
        super().close()

    def readinto(self, buffer):
        count = self._raw.readinto(buffer)
        if count and self._progress:
            self._progress(count)
        return count


@contextmanager
def open_lines(path, encoding, progress):
    """The file's lines as text (a ``Lines``). Each line is decoded on its own, so a bad
    byte is reported with its line number and the other lines still import."""
    encoding = encoding or "utf-8"
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise ImportFailed(f"unknown encoding {encoding!r}; try utf-8, latin-1 or cp1252") from None
    if codec == "utf-8":
        codec = "utf-8-sig"   # a byte-order mark (Excel's "CSV UTF-8") is skipped
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror}") from None
    buffered = io.BufferedReader(_CountingReader(raw, progress), buffer_size=1 << 16)
    with buffered:
        if codec.startswith(("utf-16", "utf-32")):
            newline = _wide_newline(buffered, codec)
            yield Lines(_wide_lines(buffered, newline), newline, codec, encoding)
        else:
            # UTF-8, cp1252, latin-1, ...: a newline is one b"\n" byte, never part of another
            # character, so the file splits into lines before decoding.
            yield Lines(buffered, b"\n", codec, encoding, blocks=buffered)


class Lines:
    """Decoded lines, one at a time. A line that is not valid in the encoding comes out
    with U+FFFD in place of the bad bytes, so the csv reader keeps counting lines right,
    and is noted in ``bad`` (line number -> why) for the import to reject its row.

    In a UTF-8 file the lines after the first are read a block at a time (``blocks``, the
    file): a block of whole lines that decodes as a whole gives the same lines as decoding
    each; a block that does not is decoded line by line, as above."""

    BLOCK = 1 << 16     # bytes read at once (then to the end of the line)

    def __init__(self, lines, newline, codec, encoding, blocks=None):
        self._lines, self._number = iter(lines), 0
        self._newline, self.encoding = newline, encoding
        self._decoder = codecs.getincrementaldecoder(codec)()
        # After its first line (and its byte-order mark), a whole UTF-8 line decodes on its
        # own: a newline byte never ends a character part-way, so no state carries over.
        self._whole = "utf-8" if codec == "utf-8-sig" else None
        self._blocks = blocks if self._whole else None
        self.bad = {}
        self.bad_count = 0

    def __iter__(self):
        if self._blocks is not None and self._number:
            return self._by_block()
        return self

    def __next__(self):
        raw = next(self._lines)
        self._number += 1
        return self._decode(self._number, raw)

    def _by_block(self):
        read, readline = self._blocks.read, self._blocks.readline
        while block := read(self.BLOCK):
            if not block.endswith(b"\n"):
                block += readline()          # to the end of its last line (or of the file)
            try:
                lines = block.decode("utf-8").split("\n")
            except UnicodeDecodeError:
                for raw in _split_at_newlines(block):
                    self._number += 1
                    yield self._decode(self._number, raw)
                continue
            last = lines.pop()               # "" after a final newline, else the last line
            self._number += len(lines) + bool(last)
            yield from [line + "\n" for line in lines]
            if last:
                yield last

    def _decode(self, number, raw):
        final = not raw.endswith(self._newline)   # the last line: a cut-off character is an error
        if self._whole and number > 1 and not final:
            try:
                return raw.decode(self._whole)
            except UnicodeDecodeError:
                pass            # the decoder below says why
        try:
            return self._decoder.decode(raw, final)
        except UnicodeDecodeError as exc:
            self.bad[number] = (f"not valid {self.encoding} ({exc.reason}: byte "
                                f"0x{exc.object[exc.start]:02x} at byte {exc.start + 1} of the line)")
            self.bad_count += 1
            # The decoder's state is as before the failed call; decode the line again with
            # the bad bytes replaced (switching `errors` is how codecs allow this).
            self._decoder.errors = "replace"
            try:
                return self._decoder.decode(raw, final)
            finally:
                self._decoder.errors = "strict"

    def take(self, through):
        """The undecodable lines up to line ``through`` as (line, why), in order; they are
        forgotten here once taken."""
        if not self.bad:
            return []
        return [(n, self.bad.pop(n)) for n in sorted(n for n in self.bad if n <= through)]


def _wide_newline(buffered, codec):
    """A newline in this UTF-16 or UTF-32 file as bytes, in its byte order (from the
    byte-order mark, else the order Python's codec assumes)."""
    bits = 32 if codec.startswith("utf-32") else 16
    order = codec[-2:] if codec.endswith(("-le", "-be")) else None
    if order is None:
        start = buffered.peek(bits // 8)[:bits // 8]
        big = codecs.BOM_UTF32_BE if bits == 32 else codecs.BOM_UTF16_BE
        little = codecs.BOM_UTF32_LE if bits == 32 else codecs.BOM_UTF16_LE
        order = "be" if start == big else "le" if start == little else sys.byteorder[0] + "e"
    return "\n".encode(f"utf-{bits}-{order}")


def _wide_lines(buffered, newline):
    """The file's lines as bytes, split where a newline starts on a character boundary (in
    UTF-16 and UTF-32 a 0x0a byte can also be part of another character)."""
    unit = len(newline)
    pending, scan = bytearray(), 0
    while chunk := buffered.read1(1 << 16):
        pending += chunk
        begin = 0
        while (found := pending.find(newline, scan)) != -1:
            if (found - begin) % unit:
                scan = found + 1
                continue
            yield bytes(pending[begin:found + unit])
            begin = scan = found + unit
        del pending[:begin]
        scan = max(0, len(pending) - unit + 1)
    if pending:
        yield bytes(pending)


def _split_at_newlines(block):
    """The lines of ``block``, split after each newline byte only (not at a carriage return);
    each ends with its newline, except a last line that has none."""
    lines = [line + b"\n" for line in block.split(b"\n")]
    last = lines.pop()[:-1]
    return lines + [last] if last else lines


def delimiter(header_line):
    """The separator the header line uses: comma, semicolon or tab (comma when none)."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
