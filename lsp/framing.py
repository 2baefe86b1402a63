"""The LSP base protocol on a byte stream: header lines, a blank line, Content-Length bytes of body.

Every limit is enforced before memory is spent on it, so no byte sequence can stop or stall the reader:
- a header line is at most MAX_HEADER_LINE bytes; the rest of a longer one is discarded as it arrives (only
  its tail is kept, where the header that follows garbage on the same line would be);
- a declared Content-Length is parsed from at most MAX_LENGTH_DIGITS digits (Python refuses to convert
  thousands of digits) and is never trusted past MAX_MESSAGE_BYTES: such a frame is reported as `Oversized`
  and its body is not read. The stream resynchronises on the next header, which after a one-line JSON body
  is the Content-Length at the end of the same line, so a lying length costs one message, not the stream.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_HEADER_LINE = 64 * 1024
MAX_LENGTH_DIGITS = 12  # a terabyte; anything longer is over the cap whatever its value
_TAIL = 256  # bytes of an over-long header line kept: enough for a whole "Content-Length: N\r\n" after garbage
CONTENT_LENGTH = re.compile(rb"content-length:[ \t]*(\d+)", re.IGNORECASE)
READ_SIZE = 1 << 20


@dataclass(frozen=True)
class Oversized:
    """A frame whose declared length is over the cap; its body was not read."""

    declared: str  # the digits as sent (cut to MAX_LENGTH_DIGITS + 1), for the error message


class Framer:
    """Frames from `read_some` (an async callable returning the next bytes, b"" at end of input)."""

    def __init__(self, read_some: Callable[[], Awaitable[bytes]], max_body: int = MAX_MESSAGE_BYTES):
        self._read_some = read_some
        self._max_body = max_body
        self._buf = bytearray()
        self._eof = False

    async def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = await self._read_some()
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    async def _line(self) -> bytes | None:
        """The next header line (through its "\\n"), or its tail when it is over MAX_HEADER_LINE; None at EOF."""
        searched = 0
        while True:
            nl = self._buf.find(b"\n", searched)
            if nl >= 0:
                line = bytes(self._buf[: nl + 1])
                del self._buf[: nl + 1]
                return line[-MAX_HEADER_LINE:] if len(line) > MAX_HEADER_LINE else line
            if len(self._buf) > MAX_HEADER_LINE:
                del self._buf[:-_TAIL]
            searched = len(self._buf)
            if not await self._fill():
                return None

    async def _exactly(self, n: int) -> bytes | None:
        while len(self._buf) < n:
            if not await self._fill():
                return None
        body = bytes(self._buf[:n])
        del self._buf[:n]
        return body

    async def next(self) -> bytes | Oversized | None:
        """The next body, an Oversized marker, or None at the end of input."""
        digits: bytes | None = None
        while True:
            line = await self._line()
            if line is None:
                return None
            if not line.strip():
                if digits is not None:
                    break
                continue
            # Searched, not matched at the line start, and the last one wins: after a frame without headers
            # (or the unread body of an oversized one) the next header follows the garbage on the same line.
            found = CONTENT_LENGTH.findall(line)
            if found:
                digits = found[-1].lstrip(b"0") or b"0"
        if len(digits) > MAX_LENGTH_DIGITS or int(digits) > self._max_body:
            return Oversized(digits[: MAX_LENGTH_DIGITS + 1].decode())
        body = await self._exactly(int(digits))
        return body
