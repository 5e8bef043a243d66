"""Builds the compiled core: the modules of ``ctswitch._native.MODULES``, compiled by Cython from
their unchanged source (pure-Python mode, with the augmenting .pxd declarations beside some of
them) into ``src/ctswitch/_compiled/``.

Incremental: a module is rebuilt only when its digest (``_native.module_digest``: its .py, its
.pxd and those of the types it cimports) or the interpreter's build (``_native.build_tag``) differs
from the manifest's.  Never fails the make target: without Cython or a C compiler, or when a module
does not compile, it says so on one line and that module runs as Python (ctswitch._native).

Profile-guided (with GCC; ``--no-pgo`` or CTSWITCH_PGO=0 skips it): the modules to build are
compiled instrumented (``-fprofile-generate``), ``scripts/pgo_train.py`` runs the vendor scenario
with them loaded, and they are compiled again with the branch counts it recorded
(``-fprofile-use``): less CPU time on every slow-path benchmark than the same build without the
profile (commit 4fd4736, docs/performance.md section 12).  If the training fails, the modules
are compiled without it and the build says why.

    python scripts/build_native.py [--clean] [--jobs N] [--no-pgo]
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


ENV_PGO = "CTSWITCH_PGO"  # 0: compile without the profile-guided pass (a quicker build)
TRAINING_TIMEOUT_S = 900


def _say(msg: str) -> None:
    print(f"native build: {msg}", file=sys.stderr)


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _cythonize(names: list[str], jobs: int, tmp: str) -> dict:
    """The C sources of ``names``: {name: Extension} for those Cython compiles."""
    from Cython.Build import cythonize
    from setuptools import Extension

    def cy(group: list[str], nthreads: int) -> list:
        return cythonize([Extension("ctswitch." + n, [_native.source_path(n)]) for n in group],
                         compiler_directives=DIRECTIVES, build_dir=os.path.join(tmp, "c"), quiet=True,
                         force=True, nthreads=nthreads)

    exts: dict = {}
    try:  # all at once, in parallel
        exts = dict(zip(names, cy(names, jobs), strict=True))
    except Exception:  # Cython's CompileError: again one by one, so the failure names its module
        for name in names:
            try:
                exts[name] = cy([name], 0)[0]
            except Exception as e:  # this module stays Python
                _say(f"ctswitch.{name} does not compile with Cython ({type(e).__name__}); it runs as Python")
    return exts


def _build(exts: dict, jobs: int, tmp: str, cflags: list[str], ldflags: list[str]) -> dict[str, str]:
    """Compiles the C sources ``exts`` with the extra flags; {name: built extension path}.  The
    objects always go to the same place under ``tmp``, where the instrumented build's profile
    counts (``.gcda``, beside each object) are found by the build that uses them."""
    from setuptools import Distribution
    from setuptools.command.build_ext import build_ext

    for ext in exts.values():
        ext.extra_compile_args = list(cflags)
        ext.extra_link_args = list(ldflags)
    dist = Distribution({"name": "ctswitch-native", "ext_modules": list(exts.values())})
    cmd = build_ext(dist)
    cmd.build_lib = os.path.join(tmp, "lib")
    cmd.build_temp = os.path.join(tmp, "obj")
    cmd.parallel = jobs
    cmd.force = True
    cmd.ensure_finalized()
    cmd.run()
    out = {}
    for name in exts:
        path = cmd.get_ext_fullpath("ctswitch." + name)
        if os.path.isfile(path):
            out[name] = path
    return out


def _pgo_off(argv: list[str]) -> str | None:
    """Why the build is not profile-guided (None: it is)."""
    if "--no-pgo" in argv or os.environ.get(ENV_PGO, "") == "0":
        return f"not asked for (--no-pgo or {ENV_PGO}=0)"
    import sysconfig
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "").split()
    name = os.path.basename(cc[0]) if cc else "unknown"
    if "gcc" not in name or "clang" in name:
        return f"the C compiler is {name}, not GCC"
    return None


def _trained(exts: dict, digests: dict[str, str], entries: dict, jobs: int, tmp: str) -> tuple[dict, str]:
    """The profile-guided build of ``exts``: compiled instrumented, ``scripts/pgo_train.py`` run
    with them loaded (beside the current build of the other modules), compiled again with the
    counts.  ({name: path}, "") or ({}, why not)."""
    import subprocess

    gen = _build(exts, jobs, tmp, ["-fprofile-generate"], ["-fprofile-generate"])
    if set(gen) != set(exts):
        return {}, "the instrumented build failed"
    modules = {n: dict(e, file=os.path.join(_native.NATIVE_DIR, str(e.get("file", ""))))
               for n, e in entries.items() if n not in exts}
    modules.update({n: {"file": path, "sha256": digests[n]} for n, path in gen.items()})
    manifest = os.path.join(tmp, "training-manifest.json")
    with open(manifest, "w") as f:
        json.dump({"abi": _native.build_tag(), "modules": modules}, f)
    env = dict(os.environ, **{_native.ENV_TRAINING_MANIFEST: manifest})
    env.pop(_native.ENV_PURE, None)
    try:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "pgo_train.py")], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=TRAINING_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {}, f"the training run took more than {TRAINING_TIMEOUT_S} s"
    if r.returncode:
        last = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        return {}, f"the training run failed ({last})"
    return _build(exts, jobs, tmp, ["-fprofile-use", "-fprofile-correction", "-Wno-missing-profile"], []), ""


def _write(entries: dict) -> None:
    manifest = {"abi": _native.build_tag(), "modules": entries}
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
    if manifest.get("abi") != _native.build_tag():  # another interpreter: everything again
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
            exts = _cythonize([n for n, _ in todo], jobs, tmp)
            done: dict[str, str] = {}
            why = _pgo_off(argv)
            if exts and why is None:
                try:
                    done, why = _trained(exts, dict(todo), entries, jobs, tmp)
                except Exception as e:  # (a compiler without these flags...): the plain build
                    done, why = {}, f"the profile-guided build failed ({_first_line(e)})"
            pgo = bool(done)
            if exts and not pgo:
                if why:
                    _say(f"without a profile: {why}")
                done = _build(exts, jobs, tmp, [], [])
        except Exception as e:  # no C compiler, missing Python headers: everything stays Python
            _say(f"C compilation failed ({_first_line(e)}); ctswitch runs as pure Python")
            return 0
        for name, d in todo:
            entries.pop(name, None)
            path = done.get(name)
            if path is None:
                continue
            fname = _native.ext_file(name)
            shutil.copyfile(path, os.path.join(_native.NATIVE_DIR, fname + ".tmp"))
            os.replace(os.path.join(_native.NATIVE_DIR, fname + ".tmp"), os.path.join(_native.NATIVE_DIR, fname))
            entries[name] = {"file": fname, "sha256": d, "pgo": pgo}
    _write(entries)
    _say(f"{len(entries)} of {len(_native.MODULES)} modules compiled ({time.monotonic() - t0:.0f} s{', profile-guided' if pgo else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
