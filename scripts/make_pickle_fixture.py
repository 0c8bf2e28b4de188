#!/usr/bin/env python3
"""Writes SED-style pickled datasets from a standard-format task file, as test fixtures for
`karel::data::pickle`:

  <out>/py2.pkl (+ .index)  the bytes Python 2's pickle (protocol 2) writes for SED's records:
                            byte strings as SHORT_BINSTRING/BINSTRING, numpy uint16 arrays rebuilt
                            with numpy.core.multiarray._reconstruct; emitted opcode by opcode;
  <out>/py3.pkl (+ .index)  the same records pickled by this Python with protocol 2 (text strings,
                            the installed numpy's array pickling).

    python3 scripts/make_pickle_fixture.py TASKS.jsonl OUT_DIR     (needs numpy)
"""
import json
import pickle
import struct
import sys

import numpy as np


def records(path):
    for i, line in enumerate(open(path)):
        task = json.loads(line)
        examples = []
        for e in task["examples"]:
            grid = lambda s: sorted(int(item.split(":")[0]) for item in s.split())
            examples.append({"in": grid(e["inpgrid_tensor"]), "out": grid(e["outgrid_tensor"])})
        yield {"id": i, "guid": task["guid"], "examples": examples, "code": task["program_tokens"]}


class Py2Pickler:
    """Emits protocol-2 opcodes the way Python 2's cPickle does for SED's records."""

    def __init__(self):
        self.out = bytearray()
        self.memo = 0

    def put(self):
        self.out += b"q" + bytes([self.memo]) if self.memo < 256 else b"r" + struct.pack("<I", self.memo)
        self.memo += 1

    def string(self, b):
        if len(b) < 256:
            self.out += b"U" + bytes([len(b)]) + b
        else:
            self.out += b"T" + struct.pack("<i", len(b)) + b
        self.put()

    def integer(self, n):
        if 0 <= n < 256:
            self.out += b"K" + bytes([n])
        elif 0 <= n < 65536:
            self.out += b"M" + struct.pack("<H", n)
        else:
            self.out += b"J" + struct.pack("<i", n)

    def array(self, values):
        data = np.array(values, dtype="<u2").tobytes()
        self.out += b"cnumpy.core.multiarray\n_reconstruct\n"
        self.put()
        self.out += b"cnumpy\nndarray\n"
        self.put()
        self.integer(0)
        self.out += b"\x85"
        self.put()
        self.string(b"b")
        self.out += b"\x87"
        self.put()
        self.out += b"R"
        self.put()
        self.out += b"("
        self.integer(1)
        self.integer(len(values))
        self.out += b"\x85"
        self.put()
        self.out += b"cnumpy\ndtype\n"
        self.put()
        self.string(b"u2")
        self.integer(0)
        self.integer(1)
        self.out += b"\x87"
        self.put()
        self.out += b"R"
        self.put()
        self.out += b"("
        self.integer(3)
        self.string(b"<")
        self.out += b"NNN"
        self.out += b"J" + struct.pack("<i", -1) + b"J" + struct.pack("<i", -1)
        self.integer(0)
        self.out += b"tb"
        self.out += b"\x89"
        self.string(data)
        self.out += b"tb"

    def record(self, r):
        self.out += b"\x80\x02}"
        self.put()
        self.out += b"("
        self.string(b"id")
        self.integer(r["id"])
        self.string(b"guid")
        self.string(r["guid"].encode("latin1"))
        self.string(b"examples")
        self.out += b"]"
        self.put()
        self.out += b"("
        for e in r["examples"]:
            self.out += b"}"
            self.put()
            self.out += b"("
            self.string(b"in")
            self.array(e["in"])
            self.string(b"out")
            self.array(e["out"])
            self.out += b"u"
        self.out += b"e"
        self.string(b"code")
        self.out += b"]"
        self.put()
        self.out += b"("
        for token in r["code"]:
            self.string(token.encode("latin1"))
        self.out += b"e"
        self.out += b"u."
        return bytes(self.out)


def write(path, blobs):
    offsets, at = [], 0
    with open(path, "wb") as f:
        for blob in blobs:
            offsets.append(at)
            f.write(blob)
            at += len(blob)
    with open(path + ".index", "wb") as f:
        f.write(struct.pack("<%dQ" % len(offsets), *offsets))


def main():
    source, out = sys.argv[1], sys.argv[2]
    rs = list(records(source))
    write(out + "/py2.pkl", [Py2Pickler().record(r) for r in rs])
    py3 = []
    for r in rs:
        r = dict(r, examples=[{"in": np.array(e["in"], dtype=np.uint16), "out": np.array(e["out"], dtype=np.uint16)}
                              for e in r["examples"]])
        py3.append(pickle.dumps(r, protocol=2))
    write(out + "/py3.pkl", py3)


if __name__ == "__main__":
    main()
