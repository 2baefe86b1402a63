"""The reference width of one code point in LSP position units, by its value (not by encoding it): 1 UTF-32
unit, 1 or 2 UTF-16 units (2 above U+FFFF), 1 to 4 UTF-8 bytes. Shared by the encoding and document tests (a
uniquely named module: every test folder has a conftest.py)."""


def units(c: str, encoding: str) -> int:
    o = ord(c)
    if encoding == "utf-32":
        return 1
    if encoding == "utf-16":
        return 2 if o > 0xFFFF else 1
    return 1 if o < 0x80 else 2 if o < 0x800 else 3 if o < 0x10000 else 4
