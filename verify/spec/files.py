"""Reading spec files safely: regular files only, a size limit, UTF-8 text.

A spec path must name a regular file: a directory, a FIFO, a device (``/dev/zero``) or
a socket is refused up front, before anything is read (the file is opened without
blocking, and checked with ``fstat`` on the open descriptor).  Files larger than
:func:`max_spec_bytes` (20 MiB unless the environment variable ``VERIFY_MAX_SPEC_BYTES``
says otherwise) are refused: the readers need memory proportional to the file, and
no real spec comes near the limit (VNN-COMP's largest are a few MB).  Text is UTF-8,
with or without a byte-order mark; a byte that is not UTF-8 is named by line and column.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
from pathlib import Path

from verify.errors import InputFileError, SpecSyntaxError

#: Default limit on the size of a spec file, in bytes (20 MiB).
DEFAULT_MAX_SPEC_BYTES = 20 * 1024 * 1024
#: Environment variable that overrides :data:`DEFAULT_MAX_SPEC_BYTES` (a number of bytes).
MAX_SPEC_BYTES_ENV = "VERIFY_MAX_SPEC_BYTES"

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, in hex (without importing torch, unlike verify.model)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def max_spec_bytes() -> int:
    """The size limit on spec files: ``$VERIFY_MAX_SPEC_BYTES`` bytes, else 20 MiB."""
    raw = os.environ.get(MAX_SPEC_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_SPEC_BYTES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise InputFileError(f"{MAX_SPEC_BYTES_ENV} must be a positive number of bytes, got {raw[:40]!r}")
    return value


def _size_error(path: Path, size: str, limit: int) -> InputFileError:
    return InputFileError(f"spec file {path} is {size} bytes, more than the limit of {limit} bytes "
                          f"({limit / 2**20:.3g} MiB); set the environment variable {MAX_SPEC_BYTES_ENV} "
                          "to a larger number of bytes to read it")


def read_spec_bytes(path: str | Path) -> bytes:
    """The contents of the spec file ``path``, or a one-line :class:`InputFileError`."""
    path = Path(path)
    limit = max_spec_bytes()
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputFileError(f"spec file not found: {path}") from None
    except PermissionError:
        raise InputFileError(f"spec file not readable (permission denied): {path}") from None
    except IsADirectoryError:
        raise InputFileError(f"spec path is a directory, not a file: {path}") from None
    except OSError as exc:
        raise InputFileError(f"spec file cannot be opened: {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputFileError(f"spec path is a directory, not a file: {path}")
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
            raise InputFileError(f"spec path is {kind}, not a regular file: {path}")
        if info.st_size > limit:
            raise _size_error(path, str(info.st_size), limit)
        chunks, total = [], 0
        while True:
            try:
                chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            except OSError as exc:
                raise InputFileError(f"spec file cannot be read: {path}: {exc.strerror or exc}") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # the file grew while it was read
                raise _size_error(path, f"more than {limit}", limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


def spec_text(data: bytes, path: str) -> str:
    """``data`` decoded as UTF-8 (a byte-order mark is skipped), newlines made ``\\n``."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        col = len(data[line_start:start].decode("utf-8", "replace")) + 1
        raise SpecSyntaxError(path, line, col, f"not a text file: byte 0x{data[start]:02x} is not UTF-8 "
                                               f"({exc.reason}); spec files are UTF-8 text") from None
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text
