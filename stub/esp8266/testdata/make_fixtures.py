#!/usr/bin/env python3
"""Make the inflate fixtures: streams compressed by C zlib at level 9.

esptool compresses FLASH_DEFL_DATA payloads with Python's zlib.compress(data,
9), i.e. C zlib (esp8266-protocol.md section 10.3). Go's compress/zlib is a
different encoder, so these committed streams check the stub's inflater on
what esptool-style clients really send. Run once from this directory:

    python3 make_fixtures.py

It writes NAME.zlib for each case and fixtures.txt with one line per case:
NAME, uncompressed size, SHA-256 of the uncompressed data, and the block
type the case exists to cover. The uncompressed data is not committed; the
test compares the inflated bytes with the hash.
"""
import hashlib
import random
import zlib

WORDS = (b"relay power switch wifi config tasmota module gpio button led "
         b"timer rule mqtt topic state sensor energy voltage current the "
         b"of and to in is on for with that this").split()


def text(r, n):
    out = bytearray()
    while len(out) < n:
        out += r.choice(WORDS) + (b"\n" if r.random() < 0.1 else b" ")
    return bytes(out[:n])


def firmware_like(r, n):
    """Code-like random bytes, strings, and zero/0xFF runs, as in an image."""
    out = bytearray()
    while len(out) < n:
        kind = r.random()
        if kind < 0.55:  # machine code: skewed byte values
            out += bytes(min(255, int(r.expovariate(1 / 40))) for _ in range(r.randrange(64, 2048)))
        elif kind < 0.75:  # string tables
            out += text(r, r.randrange(32, 512)) + b"\0"
        elif kind < 0.9:
            out += b"\0" * r.randrange(16, 4096)
        else:
            out += b"\xff" * r.randrange(16, 8192)
    return bytes(out[:n])


def main():
    r = random.Random(20240607)
    cases = [
        # incompressible: zlib falls back to stored blocks
        ("stored", bytes(r.getrandbits(8) for _ in range(48 * 1024)), "stored"),
        # short input: zlib picks the fixed Huffman code
        ("fixed", b"tuyaflash writes Tasmota to a TYWE3S module. " * 3, "fixed"),
        # longer text: dynamic Huffman blocks
        ("dynamic", text(r, 96 * 1024), "dynamic"),
        # a Tasmota-like image: mixed content, several blocks
        ("firmware", firmware_like(r, 192 * 1024), "dynamic"),
        # long runs: overlapping copies at distance 1, maximum lengths
        ("runs", b"\0" * 150000 + b"\xff" * 100000 + b"\xaa\x55" * 3000, "dynamic"),
        # nothing at all: one fixed block holding only end-of-block
        ("empty", b"", "fixed"),
    ]
    with open("fixtures.txt", "w") as manifest:
        manifest.write("# name size sha256 block-type (made by make_fixtures.py)\n")
        for name, data, kind in cases:
            with open(name + ".zlib", "wb") as f:
                f.write(zlib.compress(data, 9))
            manifest.write("%s %d %s %s\n" % (name, len(data), hashlib.sha256(data).hexdigest(), kind))
    print("zlib", zlib.ZLIB_VERSION)


if __name__ == "__main__":
    main()
