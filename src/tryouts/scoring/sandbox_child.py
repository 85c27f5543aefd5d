"""The two programs of the code sandbox, as source run with ``python -I -c`` (see :mod:`.sandbox`).

``HARNESS`` runs the task's tests. It never runs the model's code: it starts ``CHILD`` (inside bubblewrap
where that works) and gives the tests stand-ins for the code's functions. Calling one sends the arguments to
the child as data; the child runs the function and sends back the result as data (``None``, bools, ints,
floats, complex numbers, strings, bytes, lists, tuples, dicts, sets; anything else becomes an opaque handle).
The tests' own comparisons run in the harness, on values decoded strictly from JSON, so the child never sees an
expected value and cannot change a verdict: it can only return values. The verdict goes from the harness to a
file the child cannot reach. The code's top-level names go into the tests' globals, except names of builtins
(a ``def abs`` in the code must not become the ``abs`` of ``assert abs(f(x) - y) < 1e-6``), and a few standard
modules the code imported (``math``, ``re``, ...) are the harness's own, so patching them in the child changes
nothing the tests see.

``CODEC`` (shared) is the value encoding: ``[tag, payload]`` lists in JSON; decoding checks every tag and type.
"""

from __future__ import annotations

__all__ = ["CHILD", "HARNESS"]

CODEC = r'''
import base64 as _b64, json as _json

_SEQ = {list: "l", tuple: "t", set: "S", frozenset: "F"}
_UNSEQ = {"l": list, "t": tuple, "S": set, "F": frozenset}
_DEPTH = 200


def enc(x, handle, depth=0):
    if depth > _DEPTH:
        raise ValueError("the value is nested too deeply to send")
    t = type(x)
    if x is None:
        return ["n"]
    if t is bool:
        return ["b", x]
    if t is int:
        return ["i", str(x)]
    if t is float:
        return ["f", x.hex()]
    if t is complex:
        return ["c", x.real.hex(), x.imag.hex()]
    if t is str:
        return ["s", x]
    if t is bytes:
        return ["y", _b64.b64encode(x).decode("ascii")]
    if t in _SEQ:
        return [_SEQ[t], [enc(v, handle, depth + 1) for v in x]]
    if t is dict:
        return ["d", [[enc(k, handle, depth + 1), enc(v, handle, depth + 1)] for k, v in x.items()]]
    return ["h", handle(x)]


def dec(v, handle, depth=0):
    if depth > _DEPTH or type(v) is not list or not v or type(v[0]) is not str:
        raise ValueError("malformed value")
    tag, n = v[0], len(v)
    if tag == "n" and n == 1:
        return None
    if n == 2 and tag == "b" and type(v[1]) is bool:
        return v[1]
    if n == 2 and tag == "i" and type(v[1]) is str:
        return int(v[1])
    if n == 2 and tag == "f" and type(v[1]) is str:
        return float.fromhex(v[1])
    if n == 3 and tag == "c" and type(v[1]) is str and type(v[2]) is str:
        return complex(float.fromhex(v[1]), float.fromhex(v[2]))
    if n == 2 and tag == "s" and type(v[1]) is str:
        return v[1]
    if n == 2 and tag == "y" and type(v[1]) is str:
        return _b64.b64decode(v[1], validate=True)
    if n == 2 and tag in _UNSEQ and type(v[1]) is list:
        return _UNSEQ[tag](dec(x, handle, depth + 1) for x in v[1])
    if n == 2 and tag == "d" and type(v[1]) is list:
        out = {}
        for pair in v[1]:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("malformed value")
            out[dec(pair[0], handle, depth + 1)] = dec(pair[1], handle, depth + 1)
        return out
    if n == 2 and tag == "h" and type(v[1]) is int:
        return handle(v[1])
    raise ValueError("malformed value")


BAD = (ValueError, TypeError, RecursionError, OverflowError, KeyError, IndexError)
'''

# argv: <fd to read requests from> <fd to write replies to>. Runs the code as module `solution`, then answers
# requests until the harness closes its end. Nothing it writes is trusted.
CHILD = CODEC + r'''
def main():
    import linecache, os, socket, sys, traceback, types

    rin, rout = os.fdopen(int(sys.argv[1]), "rb"), os.fdopen(int(sys.argv[2]), "wb")
    del sys.argv[1:]
    exit_now, stderr = os._exit, sys.stderr
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)

    class SandboxBlocked(PermissionError):
        """Raised by the Tryouts sandbox's audit hook (a courtesy for honest code, not the boundary)."""

    SandboxBlocked.__qualname__ = "SandboxBlocked"
    net = "network access is blocked in the Tryouts sandbox"
    proc = "starting processes is blocked in the Tryouts sandbox"
    blocked = {
        "socket.connect": net, "socket.bind": net, "socket.sendto": net, "socket.getaddrinfo": net,
        "socket.gethostbyname": net, "socket.gethostbyaddr": net, "socket.getnameinfo": net,
        "subprocess.Popen": proc, "os.system": proc, "os.exec": proc, "os.posix_spawn": proc,
        "os.spawn": proc, "os.fork": proc, "os.forkpty": proc, "os.startfile": proc,
        "ctypes.dlopen": "loading native libraries with ctypes is blocked in the Tryouts sandbox",
    }
    own_pid, own_pgid, unix = os.getpid(), os.getpgid(0), socket.AF_UNIX

    def hook(event, args):
        if event in blocked:
            raise SandboxBlocked(f"{blocked[event]} ({event})")
        if event == "socket.__new__" and args[1] != unix:
            raise SandboxBlocked(f"{net} (socket.__new__)")
        if (event == "os.kill" and args[0] not in (0, own_pid)) or (
                event == "os.killpg" and args[0] != own_pgid):
            raise SandboxBlocked(f"signalling other processes is blocked in the Tryouts sandbox ({event})")

    try:
        import _posixsubprocess

        def fork_exec(*args, **kwargs):
            raise SandboxBlocked(f"{proc} (_posixsubprocess.fork_exec)")

        _posixsubprocess.fork_exec = fork_exec
    except ImportError:
        pass
    sys.addaudithook(hook)

    def send(obj):
        try:
            data = _json.dumps(obj).encode()
        except BAD:
            data = _json.dumps({"raise": {"type": "ValueError", "msg": "the result cannot be sent to the tests",
                                          "tb": ""}}).encode()
        rout.write(data + b"\n")
        rout.flush()

    def trace(e):
        try:
            return "".join(traceback.format_exception(type(e), e, e.__traceback__.tb_next))[-3000:]
        except BaseException:
            return f"{type(e).__name__}\n"

    def done(rc):
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__, stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        exit_now(rc)

    job = _json.loads(rin.readline())
    code = job["code"]
    module = types.ModuleType("solution")
    module.__file__ = "solution.py"
    sys.modules["solution"] = module
    linecache.cache["solution.py"] = (len(code), None, code.splitlines(True), "solution.py")
    try:
        exec(compile(code, "solution.py", "exec", dont_inherit=True), module.__dict__)
    except SystemExit as e:
        send({"load": "error", "tb": f"SystemExit({e.code!r}) raised in the code: the tests did not run.\n"})
        done(2)
    except BaseException as e:
        send({"load": "error", "tb": trace(e)})
        done(2)
    handles = []

    def handle(x):
        handles.append(x)
        return len(handles) - 1

    names, modules = {}, {}
    for name, value in list(module.__dict__.items()):
        if not name.startswith("__") and name.isidentifier():
            try:
                names[name] = enc(value, handle)
            except BAD:
                continue
            if isinstance(value, types.ModuleType) and type(getattr(value, "__name__", None)) is str:
                modules[name] = value.__name__  # `import math`: the harness may use its own, unpatched math
    send({"load": "ok", "names": names, "modules": modules})
    while True:
        line = rin.readline()
        if not line:
            done(0)
        try:
            req = _json.loads(line)
            target = handles[req["h"]]
            if req["op"] == "getattr":
                reply = {"ok": enc(getattr(target, req["name"]), handle)}
            else:
                args = [dec(a, handles.__getitem__) for a in req["args"]]
                kwargs = {k: dec(a, handles.__getitem__) for k, a in req["kwargs"].items()}
                result = target(*args, **kwargs)
                reply = {"ok": enc(result, handle), "after": [enc(a, handle) for a in args]}
        except SystemExit as e:
            reply = {"raise": {"type": "SystemExit", "msg": f"SystemExit({e.code!r}) raised in the code", "tb": ""}}
        except BaseException as e:
            reply = {"raise": {"type": type(e).__name__, "msg": str(e)[:2000], "tb": trace(e)}}
        send(reply)


main()
'''

# argv: <job.json> (code, tests, command, fds placeholders, limits, verdict/pids paths). Trusted: runs only the
# task's tests, on values it decodes itself. Writes {"status", "note"} to the verdict file.
HARNESS = CODEC + r'''
def main():
    import builtins, importlib, linecache, os, resource, signal, subprocess, sys, traceback, types

    # standard modules the tests may take from the code's `import NAME` (tests that forgot their own import):
    # the harness imports its own copy instead of calling into the code's, which the code may have patched
    TRUSTED_MODULES = {
        "array", "bisect", "cmath", "collections", "copy", "datetime", "decimal", "fractions", "functools",
        "hashlib", "heapq", "itertools", "json", "math", "numbers", "operator", "random", "re", "statistics",
        "string", "typing",
    }

    job = _json.loads(open(sys.argv[1], encoding="utf-8").read())
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    info_r, info_w = os.pipe()
    fds = {"{req}": str(req_r), "{rep}": str(rep_w), "{info}": str(info_w)}
    command = [fds.get(a, a) for a in job["command"]]
    limits = [(getattr(resource, k), tuple(v)) for k, v in job["limits"]]

    def preexec():
        for which, value in limits:
            resource.setrlimit(which, value)
        if job["own_session"]:
            os.setsid()

    with open(job["stdout"], "wb") as out, open(job["stderr"], "wb") as err:
        child = subprocess.Popen(command, cwd=job["cwd"], env=job["env"], stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=err, pass_fds=(req_r, rep_w, info_w), preexec_fn=preexec)
    for fd in (req_r, rep_w, info_w):
        os.close(fd)
    info = b""
    if job["bwrap"]:
        while chunk := os.read(info_r, 4096):
            info += chunk
    os.close(info_r)
    try:
        pids = {"init": int(_json.loads(info)["child-pid"])} if info else {"group": child.pid}
    except BAD:
        pids = {"group": child.pid}
    with open(job["pids"], "w", encoding="utf-8") as f:
        f.write(_json.dumps(pids))
    wr, rd = os.fdopen(req_w, "wb"), os.fdopen(rep_r, "rb")

    class ChildGone(Exception):
        """The code's process ended while the tests ran."""

    class SandboxProtocolError(Exception):
        """The code's process sent something that is not a valid reply."""

    class CodeError(Exception):
        """An exception raised in the code whose type is not a built-in one."""

    for cls in (ChildGone, SandboxProtocolError, CodeError):
        cls.__qualname__ = cls.__name__

    def receive():
        line = rd.readline(job["reply_limit"])
        if not line:
            raise ChildGone("the code's process ended while the tests ran")
        if not line.endswith(b"\n"):
            raise SandboxProtocolError("the code's reply was too large")
        try:
            msg = _json.loads(line)
        except BAD as e:
            raise SandboxProtocolError("the code's process sent something that is not a reply") from e
        if type(msg) is not dict:
            raise SandboxProtocolError("the code's process sent something that is not a reply")
        return msg

    def request(req):
        try:
            wr.write(_json.dumps(req).encode() + b"\n")
            wr.flush()
        except OSError:
            raise ChildGone("the code's process ended while the tests ran") from None
        msg = receive()
        if "raise" in msg:
            r = msg["raise"]
            if type(r) is not dict or not all(type(r.get(k)) is str for k in ("type", "msg", "tb")):
                raise SandboxProtocolError("the code's process sent something that is not a reply")
            cls = getattr(builtins, r["type"], None) if r["type"].isidentifier() else None
            exc = None
            # StopIteration would end the tests' iteration quietly: all(map(f, xs)) would be True
            if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(
                    cls, (StopIteration, StopAsyncIteration)):
                try:
                    exc = cls(r["msg"])
                except BaseException:
                    exc = None
            if exc is None:
                exc = CodeError(f"{r['type']}: {r['msg']}")
            exc.sandbox_traceback = r["tb"]
            raise exc
        if "ok" not in msg:
            raise SandboxProtocolError("the code's process sent something that is not a reply")
        return msg

    compare = ("the tests compared or tested the truth of an object of the code's own type; the sandbox "
               "only compares data (numbers, strings, lists, dicts, ...)")

    class Remote:
        """Stands for a function or object of the code; it lives in the code's process."""

        __slots__ = ("_rid",)

        def __init__(self, rid):
            object.__setattr__(self, "_rid", rid)

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return decode(request({"op": "getattr", "h": self._rid, "name": name})["ok"])

        def __call__(self, *args, **kwargs):
            sent = [enc(a, local_handle) for a in args]
            kw = {k: enc(a, local_handle) for k, a in kwargs.items()}
            msg = request({"op": "call", "h": self._rid, "args": sent, "kwargs": kw})
            after = msg.get("after")
            if type(after) is list and len(after) == len(args):
                for old, new in zip(args, after):
                    if type(old) in (list, dict, set):
                        try:
                            new = decode(new)
                        except SandboxProtocolError:
                            continue
                        if type(new) is type(old):
                            if type(old) is list:
                                old[:] = new
                            else:
                                old.clear()
                                old.update(new)
            return decode(msg["ok"])

        def __eq__(self, other):
            raise TypeError(compare)

        __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__
        __hash__ = object.__hash__

        def __bool__(self):
            raise TypeError(compare)

        def __repr__(self):
            return f"<object #{self._rid} of the code>"

    def local_handle(x):
        if type(x) is Remote:
            return x._rid
        raise TypeError(f"a {type(x).__name__} cannot be passed to the code in the sandbox (only data can)")

    def decode(v):
        try:
            return dec(v, Remote)
        except BAD as e:
            raise SandboxProtocolError("the code's process sent a malformed value") from e

    def ended():
        # a blocking wait in a thread: Popen.wait(timeout) polls in sleeps of up to 50 ms after the exit
        import threading

        gone = threading.Event()
        threading.Thread(target=lambda: (child.wait(), gone.set()), daemon=True).start()
        if not gone.wait(5):
            child.kill()
        rc = child.wait()
        if rc < 0 or (job["bwrap"] and rc > 128):
            sig = -rc if rc < 0 else rc - 128
            if sig in (signal.SIGXCPU, signal.SIGKILL):
                return "timeout", "killed: the CPU time limit ran out"
            return None, f"the process was killed by signal {sig}"
        return None, f"the process exited with code {rc}"

    def finish(status, note=None):
        try:
            wr.close()
        except OSError:
            pass
        if job["own_session"]:  # without bubblewrap: whatever the code left in its process group
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except OSError:
                pass
        with open(job["verdict"], "w", encoding="utf-8") as f:
            f.write(_json.dumps({"status": status, "note": note}))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    try:
        wr.write(_json.dumps({"code": job["code"]}).encode() + b"\n")
        wr.flush()
        load = receive()
    except (ChildGone, SandboxProtocolError, OSError):
        load = None
    if load is None or load.get("load") not in ("ok", "error"):
        wr.close()
        status, note = ended()
        finish(status or "error", f"{note} before the code had run (the tests did not run)")
    if load["load"] == "error":
        tb = load.get("tb")
        sys.stderr.write(tb if type(tb) is str else "the code could not run\n")
        finish("error")
    names, modules = load.get("names"), load.get("modules")
    if type(modules) is not dict:
        modules = {}
    module, given = types.ModuleType("solution"), {}
    try:
        for name, value in names.items():
            if type(name) is str and name.isidentifier():
                if name in TRUSTED_MODULES and modules.get(name) == name:
                    # the tests use `math` from the code's `import math`: ours, which the code cannot patch
                    given[name] = importlib.import_module(name)
                else:
                    given[name] = decode(value)
                setattr(module, name, given[name])
    except (AttributeError, ImportError, SandboxProtocolError):
        wr.close()
        finish("error", "the code's process sent a malformed list of names")
    # The code's names go into the tests' globals, which Python searches before the builtins: a `def abs` in
    # the code would become the tests' abs, and the code would choose the value every comparison sees. So a
    # name of a builtin always means the builtin (the tests can still write solution.abs).
    shadowing = sorted(n for n in given if n in vars(builtins))
    for name in shadowing:
        del given[name]
    module.__all__ = sorted(n for n in given if not n.startswith("_"))  # `from solution import *` alike
    if shadowing:
        sys.stderr.write(f"[tryouts sandbox] the code defines {', '.join(shadowing)}, which the tests see as "
                         "Python's built-in of that name\n")
    sys.modules["solution"] = module
    tests = job["tests"]
    linecache.cache["tests.py"] = (len(tests), None, tests.splitlines(True), "tests.py")
    namespace = {**given, "__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(tests, "tests.py", "exec", dont_inherit=True), namespace)
    except BaseException as e:
        seen, cur = [], e
        while cur is not None and cur not in seen:
            seen.append(cur)
            tb = getattr(cur, "sandbox_traceback", None)
            if tb:
                sys.stderr.write("In the code (sandboxed process):\n" + tb)
            cur = cur.__cause__ or cur.__context__
        try:  # without the harness's own frames
            lines = traceback.format_exception(type(e), e, e.__traceback__.tb_next)
            sys.stderr.write("".join(x for x in lines if not x.startswith('  File "<string>"')))
        except BaseException:
            pass
        if any(isinstance(x, ChildGone) for x in seen):
            wr.close()
            status, note = ended()
            finish(status or "failed", f"{note} while the tests ran")
        if isinstance(e, SystemExit):
            finish("failed", f"SystemExit({e.code!r}) raised in the tests: the tests did not complete.")
        finish("failed")
    finish("passed")


main()
'''
