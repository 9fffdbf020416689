"""elastic-jupyter's kernel-state helper: keeps a notebook's variables across a suspend.

The gateway runs it inside the kernel through an execute_request's user_expressions (code "",
silent), for example
    __import__('runpy').run_path('/opt/elastic-jupyter/lib/elastic_jupyter_state.py')['save'](
        '/var/lib/elastic-jupyter/state/<kernel-id>.state', 268435456)
and reads the text/plain of the result, which is one line of JSON (docs/contracts.md, "Kernel
state"). save, load and remove add nothing to the user's namespace (load adds what it
restores), print nothing and never raise.

A snapshot file is MAGIC, then one pickle per kept value, then a JSON manifest, then a footer
(the manifest's offset and length, and MAGIC). All records come from one pickler whose memo
is shared, so objects shared between variables (a class and its instances, a model and its
optimizer) are still shared after a load; each record notes the memo range it filled, so a
value that fails to pickle (or to load) is dropped without corrupting the others.
"""

import contextlib
import importlib.util
import io
import json
import os
import pickle
import struct
import sys
import tempfile
import time
import types
import warnings

MAGIC = b"EJSTATE1"
FOOTER = struct.Struct("<QQ8s")
VERSION = 1
TEMP_INFIX = ".tmp-"  # temp files are <snapshot name>.tmp-<random>, in the snapshot's directory
ALWAYS_SKIPPED = frozenset(("In", "Out", "exit", "quit", "get_ipython"))
WHY_MAX = 160
REASONS = {
    "file": "an open file",
    "generator": "a generator",
    "sync": "a lock/thread/socket",
    "cuda": "a CUDA tensor, re-run the cell that made it",
}


class Report:
    """What save, load and remove return: its repr (IPython's text/plain) is the JSON."""

    def __init__(self, **fields):
        self.fields = fields

    def __repr__(self):
        return json.dumps(self.fields, ensure_ascii=True, separators=(",", ":"), default=str)

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


class NotKept(Exception):
    """Raised by the pickler for a value that is never kept; kind is a REASONS key or "main"."""

    def __init__(self, kind, obj):
        Exception.__init__(self, kind)
        self.kind, self.obj = kind, obj


class Lost(Exception):
    """Raised on load by a reference to an object of a value that failed to load."""


class Sink:
    """The pickler's file: writes to f until the record passes budget bytes, then only counts."""

    def __init__(self, f):
        self.f, self.n, self.budget, self.counting = f, 0, None, False

    def start(self, budget):
        self.n, self.budget, self.counting = 0, budget, False

    def write(self, b):
        n = memoryview(b).nbytes
        self.n += n
        if self.budget is not None and self.n > self.budget:
            self.counting = True
        if not self.counting:
            self.f.write(b)
        return n


def size_text(n):
    if n >= 1 << 30:
        return "%.1f GiB" % (n / (1 << 30))
    if n >= 10 << 20:
        return "%d MiB" % (n >> 20)
    if n >= 1 << 20:
        return "%.1f MiB" % (n / (1 << 20))
    if n >= 1 << 10:
        return "%d KiB" % (n >> 10)
    return "%d B" % n


def error_text(e):
    msg = str(e).replace("\n", " ")
    if len(msg) > WHY_MAX:
        msg = msg[: WHY_MAX - 3] + "..."
    return "%s: %s" % (type(e).__name__, msg) if msg else type(e).__name__


@contextlib.contextmanager
def quiet():
    """Nothing the helper or a value's __reduce__ prints or warns reaches the notebook."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def shell():
    from IPython import get_ipython

    sh = get_ipython()
    if sh is None:
        raise RuntimeError("not running in an IPython kernel")
    return sh


def user_variables(sh):
    """The (name, value)s save considers: not private, not IPython's own unless the user rebound them."""
    ns, hidden, missing = sh.user_ns, sh.user_ns_hidden, object()
    for name in list(ns):
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_") or name in ALWAYS_SKIPPED:
            continue
        value = ns.get(name, missing)
        if value is missing or hidden.get(name, missing) is value:
            continue
        yield name, value


def type_kind(t, plain):
    """What the pickler must check for objects of type t (None: nothing)."""
    root = (getattr(t, "__module__", None) or "").split(".", 1)[0]
    if root == "torch" and hasattr(t, "is_cuda"):
        return "torch"
    if root in ("cupy", "cupyx") and t.__name__ == "ndarray":
        return "cuda"
    if issubclass(t, io.IOBase):
        return "file"
    if issubclass(t, (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)):
        return "generator"
    if issubclass(t, sync_types()):
        return "sync"
    if plain and (issubclass(t, type) or t is types.FunctionType):
        return "main"
    return None


def sync_types():
    import socket
    import threading

    return (type(threading.Lock()), type(threading.RLock()), threading.Thread, socket.socket)


def fresh_pickle():
    """A private copy of the pickle module: importing dill rewrites pickle._Pickler's dispatch."""
    if "dill" not in sys.modules:
        return pickle
    spec = importlib.util.find_spec("pickle")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Dispatch:
    """The pickler's dispatch table with our entries first (dill registers types while it runs)."""

    def __init__(self, base, extra):
        self.base, self.extra = base, extra

    def get(self, t, default=None):
        f = self.extra.get(t)
        return f if f is not None else self.base.get(t, default)


def make_pickler(serializer, sink):
    """A pure-Python pickler (dill's or pickle's) set up for records: see the module doc."""
    if serializer == "dill":
        import dill

        p = dill.Pickler(sink, protocol=5, byref=False, recurse=False)
    else:
        p = fresh_pickle()._Pickler(sink, protocol=5)
    kinds = {}
    plain = serializer != "dill"

    def reducer_override(obj):
        t = type(obj)
        kind = kinds.get(t, False)
        if kind is False:
            kind = kinds[t] = type_kind(t, plain)
        if kind is None:
            return NotImplemented
        if kind == "torch":
            if getattr(obj, "is_cuda", False) is True:
                raise NotKept("cuda", obj)
        elif kind == "main":
            if getattr(obj, "__module__", None) == "__main__":
                raise NotKept("main", obj)
        else:
            raise NotKept(kind, obj)
        return NotImplemented

    def save_picklebuffer(self, obj):
        # Like the C pickler: stream the buffer itself instead of a bytes copy of it.
        with obj.raw() as m:
            if not m.contiguous:
                raise pickle.PicklingError("a non-contiguous PickleBuffer")
            head = (pickle.BINBYTES8 if m.readonly else pickle.BYTEARRAY8) + struct.pack("<Q", m.nbytes)
            if m.nbytes >= self.framer._FRAME_SIZE_TARGET:
                self._write_large_bytes(head, m)
            else:
                self.write(head + m.tobytes())
        self.memoize(obj)

    base_memoize, dropped = p.memoize, [0]

    def memoize(obj):
        base_memoize(obj)
        # A big bytes value is most likely a temporary of some __reduce__: do not keep it alive
        # until the end of the save (the index stays taken; a later copy is written again).
        if type(obj) in (bytes, bytearray) and len(obj) >= 1 << 20:
            dropped[0] -= 1
            p.memo[dropped[0]] = (p.memo.pop(id(obj))[0], None)

    extra = {pickle.PickleBuffer: save_picklebuffer}
    np = sys.modules.get("numpy")
    if np is not None:
        # dill saves arrays with __reduce__ (a bytes copy of the data); protocol 5's
        # __reduce_ex__ hands over a PickleBuffer that save_picklebuffer streams.
        extra[np.ndarray] = lambda self, obj: self.save_reduce(*obj.__reduce_ex__(self.proto), obj=obj)
    p.reducer_override = reducer_override
    p.dispatch = Dispatch(type(p).dispatch, extra)
    p.memoize = memoize
    return p


def rollback(p, n0):
    """Forgets the memo entries of a record that was not written (indexes from n0 on)."""
    for key in [k for k, v in p.memo.items() if v[0] >= n0]:
        del p.memo[key]
    if hasattr(p, "_postproc"):  # dill's pending fix-ups of the failed record
        p._postproc.clear()


def why_not(e, value):
    if isinstance(e, NotKept):
        top = e.obj is value
        if e.kind == "main":
            what = "class" if isinstance(e.obj, type) else "function"
            if top:
                return "a %s defined in the notebook: re-run its cell" % what
            if e.obj is type(value):
                return "an instance of %s, a class defined in the notebook: re-run the cells that " \
                    "define and make it" % e.obj.__qualname__
            return "uses %s %s defined in the notebook: re-run its cell and this one" % (
                what, getattr(e.obj, "__qualname__", "?"))
        reason = REASONS[e.kind]
        return reason if top else "holds " + reason
    return "cannot be pickled: " + error_text(e)


def save(path, max_bytes=0, serializer=None):
    """Writes the user's namespace to path (atomically); see the module doc and the contract."""
    t0 = time.perf_counter()
    try:
        with quiet():
            report = save_quietly(str(path), int(max_bytes or 0), serializer)
    except BaseException as e:  # never raise into the gateway's request
        report = {"ok": False, "op": "save", "error": error_text(e)}
    if not report.get("ok"):
        with contextlib.suppress(Exception):
            os.remove(path)  # a stale snapshot must not be loaded on the next resume
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return Report(**report)


def choose_serializer(serializer):
    if serializer not in (None, "dill", "pickle"):
        raise ValueError("serializer must be None, 'dill' or 'pickle', not %r" % (serializer,))
    if serializer == "pickle":
        return serializer
    try:
        import dill  # noqa: F401
    except Exception:
        if serializer == "dill":
            raise
        return "pickle"
    return "dill"


def save_quietly(path, max_bytes, serializer):
    serializer = choose_serializer(serializer)
    sh = shell()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + TEMP_INFIX, dir=directory)
    try:
        with os.fdopen(fd, "w+b") as f:
            f.write(MAGIC)
            manifest = write_records(f, sh, max_bytes, serializer)
            manifest.update(history(sh))
            data = json.dumps(manifest, ensure_ascii=True).encode()
            offset = f.tell()
            f.write(data)
            f.write(FOOTER.pack(offset, len(data), MAGIC))
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    kept = [{"name": r["name"], "type": r["type"], "bytes": r["length"]}
            for r in manifest["records"] if r["kind"] == "var"]
    return {"ok": True, "op": "save", "path": path, "bytes": size, "serializer": serializer,
            "kept": kept, "not_kept": manifest["not_kept"],
            "modules": [m["name"] for m in manifest["modules"]],
            "execution_count": manifest["execution_count"]}


def write_records(f, sh, max_bytes, serializer):
    sink = Sink(f)
    p = make_pickler(serializer, sink)
    records, not_kept, modules = [], [], []

    def budget():
        return None if max_bytes <= 0 else max_bytes - f.tell()

    def write(kind, key, value):
        """Pickles one record; returns None when written, else why not."""
        left = budget()
        nbytes = getattr(value, "nbytes", None)
        if left is not None and type(nbytes) is int and nbytes > left and \
                (type(value).__module__ or "").startswith("numpy"):
            return over(nbytes, left)
        start, n0 = f.tell(), len(p.memo)
        sink.start(left)
        try:
            p.dump(value)
        except Exception as e:
            why = why_not(e, value)
        else:
            why = over(sink.n, left) if sink.counting else None
        if why is not None:
            f.seek(start)
            f.truncate()
            rollback(p, n0)
            return why
        records.append({"kind": kind, "name": key, "type": type(value).__name__, "offset": start,
                        "length": f.tell() - start, "memo": [n0, len(p.memo)]})
        return None

    def over(n, left):
        alone = " with the variables before it" if n <= max_bytes else ""
        return {"bytes": n, "why": "%s: over the %s state limit%s" % (size_text(n), size_text(max_bytes), alone)}

    for name, value in user_variables(sh):
        if isinstance(value, types.ModuleType):
            mod = getattr(value, "__name__", None)
            if mod and sys.modules.get(mod) is value:
                modules.append({"name": name, "module": mod})
            else:
                not_kept.append({"name": name, "type": "module", "why": "a module that cannot be imported again"})
            continue
        why = write("var", name, value)
        if why is not None:
            entry = {"name": name, "type": type(value).__name__}
            entry.update(why if isinstance(why, dict) else {"why": why})
            not_kept.append(entry)
    for n, value in list(sh.history_manager.output_hist.items()):
        write("out", n, value)  # outputs that do not pickle or fit are dropped quietly
    p.clear_memo()
    return {"version": VERSION, "serializer": serializer, "records": records,
            "not_kept": not_kept, "modules": modules}


def history(sh):
    hm = sh.history_manager
    return {"inputs": list(hm.input_hist_parsed), "inputs_raw": list(hm.input_hist_raw),
            "execution_count": sh.execution_count, "cwd": os.getcwd()}


class LostMarker:
    """Stands in the unpickler's memo for the objects of a record that failed to load."""


LOST = LostMarker()


class Unpickler(pickle._Unpickler):
    """The pure-Python unpickler, whose memo load can repair after a failed record, reading
    dill's snapshots too (dill's own Unpickler is the C one): main is then the dict dill's
    "__builtin__.__main__" stands for, the user's namespace."""

    main = None
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, f):
        pickle._Unpickler.__init__(self, f)
        self.file_readinto = f.readinto

    def load_bytearray8(self):
        # pickle's _Unframer reads a big bytearray outside a frame into a bytes copy first.
        (n,) = struct.unpack("<Q", self.read(8))
        b = bytearray(n)
        frame = self._unframer.current_frame
        got = frame.readinto(b) if frame is not None else 0
        if got == 0 and n:
            self._unframer.current_frame = None
            view = memoryview(b)
            while got < n:
                k = self.file_readinto(view[got:])
                if not k:
                    raise pickle.UnpicklingError("the snapshot ends inside a value")
                got += k
        elif got < n:
            raise pickle.UnpicklingError("pickle exhausted before end of frame")
        self.append(b)

    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def find_class(self, module, name):
        if self.main is not None:  # dill.Unpickler.find_class's special cases
            if (module, name) == ("__builtin__", "__main__"):
                return self.main
            if (module, name) == ("__builtin__", "NoneType"):
                return type(None)
            if module == "dill.dill":
                module = "dill._dill"
        return pickle._Unpickler.find_class(self, module, name)


def checked(load_get):
    def get(self):
        load_get(self)
        if self.stack[-1] is LOST:
            raise Lost()
    return get


for op in (pickle.GET, pickle.BINGET, pickle.LONG_BINGET):
    Unpickler.dispatch[op[0]] = checked(Unpickler.dispatch[op[0]])


def make_unpickler(serializer, f, ns):
    if serializer not in ("dill", "pickle"):
        raise ValueError("unknown serializer %r" % (serializer,))
    if serializer == "dill":
        import dill  # noqa: F401  (its reconstructors are found by name; fail early if absent)
    u = Unpickler(f)
    if serializer == "dill":
        u.main = ns
    return u


def read_manifest(f):
    f.seek(0, os.SEEK_END)
    size = f.tell()
    if size < len(MAGIC) + FOOTER.size:
        raise ValueError("not a snapshot (too short)")
    f.seek(size - FOOTER.size)
    offset, length, magic = FOOTER.unpack(f.read(FOOTER.size))
    f.seek(0)
    if magic != MAGIC or f.read(len(MAGIC)) != MAGIC or offset + length > size - FOOTER.size:
        raise ValueError("not a snapshot (bad magic)")
    f.seek(offset)
    manifest = json.loads(f.read(length).decode())
    if manifest.get("version") != VERSION:
        raise ValueError("snapshot version %r, this helper reads %d" % (manifest.get("version"), VERSION))
    return manifest, size


def load(path):
    """Restores a snapshot into the user's namespace, then deletes it; see the contract."""
    t0 = time.perf_counter()
    try:
        with quiet():
            report = load_quietly(str(path))
    except BaseException as e:
        report = {"ok": False, "op": "load", "error": error_text(e)}
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return Report(**report)


def load_quietly(path):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return {"ok": False, "op": "load", "missing": True, "error": "no snapshot at " + path}
    sh = shell()
    ns = sh.user_ns
    with f:
        manifest, size = read_manifest(f)
        cwd = manifest.get("cwd")
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
        else:
            cwd = None
        failed, modules = [], []
        for m in manifest["modules"]:
            try:
                ns[m["name"]] = importlib.import_module(m["module"])
                modules.append(m["name"])
            except Exception as e:
                failed.append({"name": m["name"], "why": "import %s failed: %s" % (m["module"], error_text(e))})
        restored, outputs = [], {}
        records = manifest["records"]
        try:
            u = make_unpickler(manifest["serializer"], f, ns)
        except Exception as e:
            u, cannot = None, "cannot be loaded: " + error_text(e)
        for r in records:
            n0, n1 = r["memo"]
            if u is None:
                why = cannot
            else:
                f.seek(r["offset"])
                try:
                    value = u.load()
                    why = None
                except Lost:
                    why = "refers to a value that failed to load"
                except Exception as e:
                    why = "cannot be loaded: " + error_text(e)
                if why is not None:  # keep the memo's numbering for the records after it
                    for i in [i for i in u.memo if i >= n0]:
                        del u.memo[i]
                    for i in range(n0, n1):
                        u.memo[i] = LOST
            if r["kind"] == "var":
                if why is None:
                    ns[r["name"]] = value
                    restored.append(r["name"])
                else:
                    failed.append({"name": r["name"], "why": why})
            elif why is None:
                outputs[int(r["name"])] = value
        if u is not None:
            u.memo.clear()
    restore_history(sh, manifest, outputs)
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)  # the state lives in the kernel now
    return {"ok": True, "op": "load", "path": path, "bytes": size, "serializer": manifest["serializer"],
            "restored": restored, "modules": modules, "not_kept": manifest["not_kept"], "failed": failed,
            "execution_count": manifest["execution_count"], "cwd": cwd}


def restore_history(sh, manifest, outputs):
    """In, Out, _i/_ii/_iii/_iN, _/__/___/_N and the execution count, so numbering continues."""
    hm, ns = sh.history_manager, sh.user_ns
    inputs, raw = manifest["inputs"], manifest["inputs_raw"]
    hm.input_hist_parsed[:] = inputs
    hm.input_hist_raw[:] = raw
    for n in range(1, len(inputs)):
        ns["_i%d" % n] = inputs[n]
    for name, back in (("_i", 1), ("_ii", 2), ("_iii", 3)):
        ns[name] = inputs[-back] if len(inputs) > back else ""
    hm.output_hist.update(outputs)
    for n, value in outputs.items():
        ns["_%d" % n] = value
    last = [outputs[n] for n in sorted(outputs)[-3:]]
    dh = sh.displayhook
    for name, value in zip(("___", "__", "_")[3 - len(last):], last):
        setattr(dh, name, value)  # the displayhook only updates _ while it matches its own
        ns[name] = value
    sh.execution_count = manifest["execution_count"]


def remove(path):
    """Deletes the snapshot at path and its leftover temp files."""
    t0 = time.perf_counter()
    try:
        path = str(path)
        removed = False
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
            removed = True
        directory, prefix = os.path.dirname(os.path.abspath(path)), os.path.basename(path) + TEMP_INFIX
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(directory):
                if name.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(os.path.join(directory, name))
        report = {"ok": True, "op": "remove", "path": path, "removed": removed}
    except BaseException as e:
        report = {"ok": False, "op": "remove", "error": error_text(e)}
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return Report(**report)
