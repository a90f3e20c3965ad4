#!/usr/bin/env python3
"""Writes the small reference files of tests/test_npy.c and tests/test_safetensors.c into tests/data/io/.

The .npy files are written by numpy itself (numpy.save / numpy.lib.format), so the C reader
is tested against the reference writer, and the C writer's bytes are compared with them.
The .safetensors file is laid out by hand following the format's specification, because the
safetensors package is not installed here; tests/test_safetensors.c also checks the C writer against
byte strings quoted from the reference implementation's own unit tests.

Values are chosen so that the C test can recompute them: element i of an array is
(i - 2) * 0.5 for floats, i - 2 for signed ints, i for unsigned, i % 3 == 0 for bools.
Run from the repository root:  /usr/bin/python3 tools/gen_io_fixtures.py
"""
import json
import os
import struct

import numpy as np
from numpy.lib import format as npf

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "io")


def values(dtype, shape):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n)
    if dtype.kind == "f":
        v = (i - 2) * 0.5
    elif dtype.kind == "i":
        v = i - 2
    elif dtype.kind == "u":
        v = i
    else:
        v = i % 3 == 0
    return v.astype(dtype).reshape(shape)


def save(name, arr, version=None, fortran=False):
    path = os.path.join(OUT, name)
    if version is None and not fortran:
        np.save(path, arr)
        return
    with open(path, "wb") as f:
        if fortran:
            arr = np.asfortranarray(arr)
        npf.write_array(f, arr, version=version or (1, 0))


def main():
    os.makedirs(OUT, exist_ok=True)
    # One file per dtype the reader accepts, in numpy's own spelling.
    for code in ["<f4", "<f8", "<f2", "<i4", "<i8", "|u1", "|b1"]:
        dt = np.dtype(code)
        save("a_%s%d.npy" % (dt.kind, dt.itemsize), values(dt, (2, 3)))
    # Big-endian data, other format versions, 0-d, empty, Fortran order.
    save("be_f4.npy", values(np.dtype(">f4"), (3, 2)))
    save("be_i8.npy", values(np.dtype(">i8"), (4,)))
    save("be_f8.npy", values(np.dtype(">f8"), (2, 2)))
    save("v2_f4.npy", values(np.dtype("<f4"), (2, 3)), version=(2, 0))
    save("v3_f4.npy", values(np.dtype("<f4"), (2, 3)), version=(3, 0))
    save("scalar_f8.npy", np.array(3.25))
    save("empty_f4.npy", np.zeros((0, 3), dtype="<f4"))
    save("vec_f4.npy", values(np.dtype("<f4"), (5,)))
    save("fortran_f4.npy", values(np.dtype("<f4"), (2, 3)), fortran=True)

    # safetensors: three tensors of different dtypes plus metadata, offsets in name order
    # (the reference writer sorts by dtype alignment then name; any tiling order is valid).
    tensors = {
        "b.bias": values(np.dtype("<f4"), (3,)),
        "a.weight": values(np.dtype("<f8"), (2, 2)),
        "c.half": values(np.dtype("<f2"), (2,)),
    }
    names = {"<f4": "F32", "<f8": "F64", "<f2": "F16"}
    header = {"__metadata__": {"format": "pt", "note": "caf\u00e9 \"q\""}}
    blobs, off = [], 0
    for name in sorted(tensors):
        a = tensors[name]
        raw = a.tobytes()
        header[name] = {"dtype": names[a.dtype.str], "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(OUT, "small.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main()
