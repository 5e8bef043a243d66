"""The compiled core: which modules load as C extensions, and when.

``scripts/build_native.py`` (run by ``make``) compiles the modules listed in ``MODULES`` from their
unchanged source with Cython, in pure-Python mode (no annotations used as C types, Python semantics:
unbounded ints, the same exceptions), into ``src/ctswitch/_compiled/``, and records in its
``manifest.json`` each module's digest (``module_digest``), whether it was compiled with the
profile-guided pass, and the interpreter's build (``build_tag``).  Beside a few
modules an augmenting ``.pxd`` declares their hot classes as extension types whose fields are all
``object`` (the same values: only the access becomes a struct read) and types the arguments of
their hot functions with them (tests/unit/test_pxd_fields.py keeps the fields equal to the
classes' slots).  The slow path
(classifier, megaflow replay, conntrack, NAT, offload decisions, rewrite) is per-packet Python whose
profile is flat; compiled, the same code runs about 2x faster (docs/performance.md §6).

``install()`` (from ``ctswitch/__init__.py``) puts a finder in front of the import system that loads
a listed module from its extension only when the manifest's digest equals the digest of the ``.py``
as it is now and the ABI is this interpreter's.  So:

* an edited source is never shadowed by an older build: it runs as Python (one warning names the
  modules) until ``make`` rebuilds it, and so do the modules whose .pxd cimport its types (their
  extension would refuse to import beside a Python one);
* without a build (no compiler, no Cython) everything runs as Python, with the same results;
* ``CTSWITCH_PURE=1`` in the environment turns the compiled modules off (the tests compare both).

The extensions live in their own directory, not beside the sources, so nothing but this finder can
pick them up.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import sysconfig
import warnings

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
NATIVE_DIR = os.path.join(PACKAGE_DIR, "_compiled")
MANIFEST = os.path.join(NATIVE_DIR, "manifest.json")

# The per-packet code: the pure core and the loops that drive it.  Not listed: the modules with
# Numba kernels (datapath/kernels.py, io/_pcapscan.py, io/vnet.py: Numba compiles from Python
# bytecode), the package __init__ files, the control plane, CLI and daemon (run once per command), and
# io/afpacket.py, which runs as a script too (``python -m ctswitch.io.afpacket``: runpy needs bytecode).
MODULES = (
    "conntrack.cold", "conntrack.conn", "conntrack.defrag", "conntrack.generic", "conntrack.helpers",
    "conntrack.icmp", "conntrack.limits", "conntrack.nat", "conntrack.protocols", "conntrack.render",
    "conntrack.tcp", "conntrack.timeouts", "conntrack.tracker", "conntrack.tuples", "conntrack.udp",
    "datapath.datapath", "datapath.dpflows", "datapath.fastpath", "datapath.switch",
    "flow.actions", "flow.fields", "flow.key",
    "io.loop", "io.pcap", "io.replay",
    "offload.fdb", "offload.manager", "offload.policy", "offload.render",
    "ofproto.bridge", "ofproto.classifier", "ofproto.megaflow", "ofproto.rule", "ofproto.xlate",
    "packet.build", "packet.checksum", "packet.codec", "packet.fragment", "packet.headers",
    "packet.rewrite", "packet.summary",
)

ENV_PURE = "CTSWITCH_PURE"
# The build's profile-training run only (scripts/build_native.py): the manifest of the instrumented
# build it loads instead of MANIFEST (its files are in the build's temporary directory).
ENV_TRAINING_MANIFEST = "CTSWITCH_TRAINING_MANIFEST"


def abi() -> str:
    """The extension ABI tag of this interpreter (what an extension must have been built for)."""
    return sysconfig.get_config_var("EXT_SUFFIX") or ""


def build_tag() -> str:
    """What the manifest names as the interpreter a build was made for, and must name for the
    build to load: the ABI tag and ``sys.version`` (release, build date, compiler).  Two builds
    of one Python minor version share the ABI tag (pyenv's 3.11.7 and Debian's 3.11.2 here), but
    the extensions are compiled against one build's headers: a virtualenv made from another
    interpreter rebuilds the core rather than loading it."""
    return f"{abi()} {sys.version}"


def source_path(name: str) -> str:
    """The .py of module ``ctswitch.<name>``."""
    return os.path.join(PACKAGE_DIR, *name.split(".")) + ".py"


def source_module(name: str, as_name: str):
    """Module ``ctswitch.<name>`` run from its Python source, whatever is loaded for it, as a
    module of its own named ``as_name`` (in the same package, so its relative imports work); not
    put in ``sys.modules``.  For the compiled ``conntrack.tcp``'s fallback and for tests that compare
    a compiled module with its source."""
    from importlib.util import module_from_spec, spec_from_file_location
    spec = spec_from_file_location(as_name, source_path(name))
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ext_file(name: str) -> str:
    """The file name of module ``ctswitch.<name>``'s extension in NATIVE_DIR."""
    return name + abi()


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def pxd_path(name: str) -> str:
    """The augmenting declarations of module ``ctswitch.<name>`` (may not exist)."""
    return source_path(name)[:-3] + ".pxd"


_CIMPORT = re.compile(r"^\s*(?:from\s+ctswitch\.([\w.]+)\s+cimport|cimport\s+ctswitch\.([\w.]+))", re.M)


def cimports(name: str) -> list[str]:
    """The modules whose types the .pxd of ``name`` cimports (its compiled code needs them compiled)."""
    try:
        with open(pxd_path(name)) as f:
            text = f.read()
    except OSError:
        return []
    return sorted({a or b for a, b in _CIMPORT.findall(text)} - {name})


def needs(name: str) -> list[str]:
    """``name`` and every module it cimports, transitively (sorted, ``name`` first)."""
    seen = {name}
    todo = [name]
    while todo:
        for m in cimports(todo.pop()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return [name] + sorted(seen - {name})


def module_digest(name: str) -> str:
    """SHA-256 of what the compiled ``name`` is made of: its .py, and the .pxd of each module in
    ``needs(name)`` (its own declarations and the types it cimports: a change in either changes
    the compiled code)."""
    h = hashlib.sha256()
    for m in needs(name):
        paths = [pxd_path(m)] if m != name else [source_path(m), pxd_path(m)]
        for p in paths:
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                if p.endswith(".py"):
                    raise
                continue
            h.update(os.path.relpath(p, PACKAGE_DIR).encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def read_manifest(path: str = MANIFEST) -> dict:
    """The build's manifest ({} when there is none or it cannot be read)."""
    try:
        with open(path) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return {}
    return m if isinstance(m, dict) else {}


def check(manifest: dict, native_dir: str = NATIVE_DIR) -> tuple[dict[str, str], list[str]]:
    """(fresh, stale): the modules whose extension matches their sources now, as
    {"ctswitch.<name>": extension path}, and the built ones that cannot load: their .py or a
    .pxd they depend on changed since (``module_digest``), or a module whose types they cimport
    does not load compiled (its extension would refuse to import)."""
    fresh: dict[str, str] = {}
    stale: list[str] = []
    if manifest.get("abi") != build_tag():
        return fresh, stale
    for name, entry in (manifest.get("modules") or {}).items():
        if name not in MODULES or not isinstance(entry, dict):
            continue
        so = os.path.join(native_dir, str(entry.get("file", "")))
        try:
            same = module_digest(name) == entry.get("sha256")
        except OSError:
            continue
        if not same:
            stale.append(name)
        elif os.path.isfile(so):
            fresh["ctswitch." + name] = so
    for name in list(MODULES):
        if "ctswitch." + name in fresh and any("ctswitch." + m not in fresh for m in needs(name)[1:]):
            del fresh["ctswitch." + name]
            stale.append(name)
    return fresh, stale


def stale_message(stale: list[str], manifest: dict) -> str:
    """The one-line warning for the ``stale`` modules of ``check``: those whose sources changed,
    then those held back because a module whose types they cimport runs as Python."""
    entries = manifest.get("modules") or {}

    def changed(name: str) -> bool:
        try:
            return module_digest(name) != (entries.get(name) or {}).get("sha256")
        except OSError:
            return True

    edited = sorted(n for n in stale if changed(n))
    held = sorted(set(stale) - set(edited))
    msg = "ctswitch: source changed since the compiled build, running as Python: " + ", ".join(edited)
    if held:
        msg += ("; also " if edited else "") + "running as Python as they cimport those types: " + ", ".join(held)
    return msg + " (make rebuilds them)"


class _Finder:
    """Finds the fresh compiled modules (a meta path finder, first in ``sys.meta_path``)."""

    def __init__(self, modules: dict[str, str]) -> None:
        self.modules = modules
        self.pgo = False  # every one of them built with the profile-guided pass

    def find_spec(self, fullname, path=None, target=None):
        so = self.modules.get(fullname)
        if so is None:
            return None
        from importlib.machinery import ExtensionFileLoader
        from importlib.util import spec_from_file_location
        return spec_from_file_location(fullname, so, loader=ExtensionFileLoader(fullname, so))


_installed: _Finder | None = None


def install() -> None:
    """Puts the finder of the fresh compiled modules in place (once; not with CTSWITCH_PURE=1)."""
    global _installed
    if _installed is not None or os.environ.get(ENV_PURE, "") not in ("", "0"):
        return
    path = os.environ.get(ENV_TRAINING_MANIFEST) or MANIFEST
    manifest = read_manifest(path)
    fresh, stale = check(manifest, native_dir=os.path.dirname(path))
    if stale:
        warnings.warn(stale_message(stale, manifest), RuntimeWarning, stacklevel=2)
    _installed = _Finder(fresh)
    entries = manifest.get("modules") or {}
    _installed.pgo = bool(fresh) and all((entries.get(n[len("ctswitch."):]) or {}).get("pgo") is True for n in fresh)
    if fresh:
        sys.meta_path.insert(0, _installed)


def active() -> int:
    """How many compiled modules this process may load (0: it runs as pure Python)."""
    if os.environ.get(ENV_PURE, "") not in ("", "0") or _installed is None:
        return 0
    return len(_installed.modules)


def status() -> str:
    """One line: whether this process runs the compiled core, and how much of it."""
    if os.environ.get(ENV_PURE, "") not in ("", "0"):
        return f"pure Python ({ENV_PURE}=1)"
    n = active()
    if not n:
        return "pure Python (no compiled build)"
    how = "Cython, profile-guided" if _installed.pgo else "Cython"
    return f"compiled core ({how}): {n} of {len(MODULES)} modules"
