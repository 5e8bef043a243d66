"""Builds the compiled core: the modules of ``ctswitch._native.MODULES``, compiled by Cython from
their unchanged source (pure-Python mode, with the augmenting .pxd declarations beside some of
them) into ``src/ctswitch/_compiled/``.

Incremental: a module is rebuilt only when its digest (``_native.module_digest``: its .py, its
.pxd and those of the types it cimports) or the interpreter's ABI differs from the manifest's.  Never fails the make target: without Cython or a C compiler, or when a module does
not compile, it says so on one line and that module runs as Python (ctswitch._native).

    python scripts/build_native.py [--clean] [--jobs N]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
os.environ["CTSWITCH_PURE"] = "1"  # this process imports ctswitch only for the module list

from ctswitch import _native  # noqa: E402

# Cython directives: Python semantics throughout.  annotation_typing=False: the annotations are
# documentation, not C types (a ``list[int]`` argument may be None, an ``int`` may be big);
# binding=True: functions are full Python function objects (introspection, methods, patching);
# nonecheck=True: a None where a .pxd types a variable with one of our classes raises
# AttributeError, as Python does, instead of reading a field of None.
DIRECTIVES = {"language_level": 3, "annotation_typing": False, "binding": True, "nonecheck": True,
              "embedsignature": False, "always_allow_keywords": True}


def _say(msg: str) -> None:
    print(f"native build: {msg}", file=sys.stderr)


def _compile(names: list[str], jobs: int, tmp: str) -> dict[str, str]:
    """Compiles ``names``; {name: built extension path} for those that compiled."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    def cy(group: list[str], nthreads: int) -> list:
        return cythonize([Extension("ctswitch." + n, [_native.source_path(n)]) for n in group],
                         compiler_directives=DIRECTIVES, build_dir=os.path.join(tmp, "c"), quiet=True,
                         force=True, nthreads=nthreads)

    built: dict[str, str] = {}
    try:  # all at once, in parallel
        built = dict(zip(names, cy(names, jobs), strict=True))
    except Exception:  # Cython's CompileError: again one by one, so the failure names its module
        for name in names:
            try:
                built[name] = cy([name], 0)[0]
            except Exception as e:  # this module stays Python
                _say(f"ctswitch.{name} does not compile with Cython ({type(e).__name__}); it runs as Python")
    if not built:
        return {}
    dist = Distribution({"name": "ctswitch-native", "ext_modules": list(built.values())})
    cmd = build_ext(dist)
    cmd.build_lib = os.path.join(tmp, "lib")
    cmd.build_temp = os.path.join(tmp, "obj")
    cmd.parallel = jobs
    cmd.ensure_finalized()
    cmd.run()
    out = {}
    for name in built:
        path = cmd.get_ext_fullpath("ctswitch." + name)
        if os.path.isfile(path):
            out[name] = path
    return out


def _write(entries: dict) -> None:
    manifest = {"abi": _native.abi(), "modules": entries}
    tmpm = _native.MANIFEST + ".tmp"
    with open(tmpm, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    os.replace(tmpm, _native.MANIFEST)


def main(argv: list[str]) -> int:
    if "--clean" in argv:
        shutil.rmtree(_native.NATIVE_DIR, ignore_errors=True)
        return 0
    jobs = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else (os.cpu_count() or 1)
    manifest = _native.read_manifest()
    if manifest.get("abi") != _native.abi():
        manifest = {}
    entries = dict(manifest.get("modules") or {})
    todo = []
    for name in _native.MODULES:
        e = entries.get(name)
        d = _native.module_digest(name)
        if not (isinstance(e, dict) and e.get("sha256") == d
                and os.path.isfile(os.path.join(_native.NATIVE_DIR, str(e.get("file", ""))))):
            todo.append((name, d))
    dropped = [name for name in entries if name not in _native.MODULES]
    for name in dropped:
        del entries[name]
        try:
            os.remove(os.path.join(_native.NATIVE_DIR, _native.ext_file(name)))
        except OSError:
            pass
    if not todo:
        if dropped:
            _write(entries)
        return 0
    try:
        import Cython  # noqa: F401
        import setuptools  # noqa: F401
    except ImportError as e:
        _say(f"skipped ({e.name} is not installed): ctswitch runs as pure Python")
        return 0
    t0 = time.monotonic()
    _say(f"compiling {len(todo)} module(s) with Cython ({jobs} jobs)...")
    os.makedirs(_native.NATIVE_DIR, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ctswitch-native-") as tmp:
        try:
            done = _compile([n for n, _ in todo], jobs, tmp)
        except Exception as e:  # no C compiler, missing Python headers: everything stays Python
            _say(f"C compilation failed ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                 "ctswitch runs as pure Python")
            return 0
        for name, d in todo:
            entries.pop(name, None)
            path = done.get(name)
            if path is None:
                continue
            fname = _native.ext_file(name)
            shutil.copyfile(path, os.path.join(_native.NATIVE_DIR, fname + ".tmp"))
            os.replace(os.path.join(_native.NATIVE_DIR, fname + ".tmp"), os.path.join(_native.NATIVE_DIR, fname))
            entries[name] = {"file": fname, "sha256": d}
    _write(entries)
    _say(f"{len(entries)} of {len(_native.MODULES)} modules compiled ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
