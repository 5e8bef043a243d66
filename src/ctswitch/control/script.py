"""``ctswitch run FILE``: run a pasted vendor script (a shell transcript of the real tools).

Theory of operation
-------------------
The text is cleaned first: the vendor page's "Copy Copied!" button labels
go, non-breaking spaces become spaces, CRLF becomes LF, and lines ending in
``\\`` are joined (the command keeps the number of its first line).  Then each
line is one of:

* blank, or a comment: ``#`` not followed by a space and a known command;
* ``VAR=value`` / ``export VAR=value``: a variable for ``$VAR`` / ``${VAR}``
  (single quotes protect ``$``; an unset variable is an error, not "");
* a command, after an optional prompt (``$ `` user, ``# `` root) and
  ``sudo``: ``ovs-vsctl``, ``ovs-ofctl``, ``ovs-appctl``, ``conntrack``,
  ``sysctl``, ``/sbin/sysctl``, ``devlink``, ``echo N > /sys/...``, ``cat
  /proc/...`` (``KNOWN``), or ``ctswitch TOOL ...`` for any other tool.
  A trailing ``| grep [-v] [-i] [-c] PATTERN`` filters the output.
  Several prompts pasted on one line (``$ cmd1 $ cmd2``) are split.

Words are split with ``shlex`` (POSIX rules) after variable expansion.  Each
command is echoed as ``+ CMD`` followed by its output; warnings of commands
that succeed stay in that order on stdout.  The first command that fails
stops the script: its stderr, then ``ctswitch run: FILE:LINE: ...``, and its
exit status.  Anything else stops with ``unsupported command 'X'``, exit 1.

All lines run on one switch; the CLI saves it only when every line succeeded
(the result's code is 0), so a failed script changes nothing.  (In the
daemon, where the switch lives in memory, the lines before the failure stay
applied, as in a shell.)
"""

from __future__ import annotations

import os
import re
import shlex

from .result import Result

KNOWN = {
    "ovs-vsctl": "ovs-vsctl", "ovs-ofctl": "ovs-ofctl", "ovs-appctl": "ovs-appctl", "conntrack": "conntrack",
    "sysctl": "sysctl", "/sbin/sysctl": "sysctl", "/usr/sbin/sysctl": "sysctl", "devlink": "devlink",
    "echo": "echo", "cat": "cat",
}
_PATH_PREFIXES = ("/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/usr/local/bin/")
_ASSIGN = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)\Z", re.S)
_NOISE = re.compile(r"Copy\s+Copied!")
_OPERATORS = {"&&", "||", ";", "&", "<", "2>", "2>&1", ">&2", "|&"}


class ScriptError(Exception):
    """A line that cannot run; the message follows ``FILE:LINE: ``."""


def tool_of(word: str) -> str | None:
    """The registry tool of a command word, or None."""
    if word in KNOWN:
        return KNOWN[word]
    for pre in _PATH_PREFIXES:
        if word.startswith(pre) and word[len(pre):] in KNOWN:
            return KNOWN[word[len(pre):]]
    return None


def _starts_with_command(text: str) -> bool:
    words = text.split()
    while words and words[0] == "sudo":
        words.pop(0)
    return bool(words) and (tool_of(words[0]) is not None or words[0] == "ctswitch")


# ---------------------------------------------------------------------- lines
def logical_lines(text: str) -> list[tuple[int, str]]:
    """Cleaned text -> [(first line number, line)] with continuations joined."""
    text = _NOISE.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " "))
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for no, line in enumerate(text.split("\n"), 1):
        if not buf:
            start = no
        stripped = line.rstrip()
        n_bs = len(stripped) - len(stripped.rstrip("\\"))
        if n_bs % 2 == 1:
            buf.append(stripped[:-1])
            continue
        buf.append(line)
        out.append((start, " ".join(b.strip() for b in buf) if len(buf) > 1 else line))
        buf = []
    if buf:
        out.append((start, " ".join(b.strip() for b in buf)))
    return out


def strip_prompt(line: str) -> str | None:
    """The command text of a line without its prompt, or None for a blank/comment line."""
    s = line.strip()
    if not s:
        return None
    if s == "$" or s == "#":
        return None
    if s.startswith("$ ") or s.startswith("$\t"):
        return s[2:].strip() or None
    if s.startswith("#"):
        rest = s[1:]
        if rest[:1] in (" ", "\t") and _starts_with_command(rest.strip()):
            return rest.strip()
        return None
    return s


def split_prompts(cmd: str) -> list[str]:
    """``cmd1 $ cmd2`` (pasted prompts on one line) -> [cmd1, cmd2] when cmd2 is a known command."""
    parts = re.split(r"\s+\$\s+", cmd)
    if len(parts) == 1:
        return [cmd]
    out = [parts[0]]
    for p in parts[1:]:
        if _starts_with_command(p):
            out.append(p)
        else:
            out[-1] += " $ " + p
    return out


def cut_comment(s: str) -> str:
    """Removes a ``#`` comment that starts a word outside quotes."""
    q = None
    prev = " "
    for i, ch in enumerate(s):
        if q:
            if ch == q:
                q = None
            elif ch == "\\" and q == '"':
                pass
        elif ch in "'\"":
            q = ch
        elif ch == "#" and prev in " \t":
            return s[:i].rstrip()
        prev = ch
    return s


def expand(s: str, variables: dict[str, str]) -> str:
    """Shell-style ``$VAR`` / ``${VAR}`` expansion outside single quotes."""
    out: list[str] = []
    i, n = 0, len(s)
    q = None
    while i < n:
        ch = s[i]
        if q == "'":
            out.append(ch)
            if ch == "'":
                q = None
            i += 1
            continue
        if ch == "\\" and i + 1 < n:
            out.append(s[i:i + 2])
            i += 2
            continue
        if ch == "'" and q is None:
            q = "'"
        elif ch == '"':
            q = None if q == '"' else '"'
        if ch == "$" and i + 1 < n:
            m = re.match(r"\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)", s[i + 1:])
            if m:
                name = m.group(1) or m.group(2)
                if name not in variables:
                    raise ScriptError(f"variable '{name}' is not set (add a line {name}=VALUE)")
                out.append(variables[name])
                i += 1 + m.end()
                continue
            if s[i + 1] == "{":
                raise ScriptError("bad substitution")
        out.append(ch)
        i += 1
    return "".join(out)


def _grep(text: str, args: list[str]) -> str:
    invert = count = icase = False
    pat = None
    for a in args:
        if a.startswith("-") and pat is None and len(a) > 1:
            for f in a[1:]:
                if f == "v":
                    invert = True
                elif f == "c":
                    count = True
                elif f == "i":
                    icase = True
                elif f not in "E":
                    raise ScriptError(f"grep option -{f} is not supported")
        elif pat is None:
            pat = a
        else:
            raise ScriptError("grep on files is not supported")
    if pat is None:
        raise ScriptError("grep: no pattern")
    rx = re.compile(pat, re.I if icase else 0)
    lines = [ln for ln in text.splitlines() if bool(rx.search(ln)) != invert]
    if count:
        return f"{len(lines)}\n"
    return "".join(ln + "\n" for ln in lines)


# ---------------------------------------------------------------------- running
def run_text(switch, text: str, name: str, ctx=None, *, echo: bool = True) -> Result:
    """Runs the script ``text`` (named ``name`` in messages) on ``switch``."""
    from .dispatch import TOOLS, Context, dispatch

    if ctx is None:
        ctx = Context()
    variables: dict[str, str] = {}
    out: list[str] = []
    changed = False

    def fail(no: int, msg: str, code: int = 1, err: str = "") -> Result:
        # The user's words are quoted back with control characters escaped (no terminal tricks).
        msg = "".join(c if c.isprintable() else repr(c)[1:-1] for c in msg)
        return Result(out="".join(out), err=err + f"ctswitch run: {name}:{no}: {msg}\n", code=code)

    for no, line in logical_lines(text):
        cmd_text = strip_prompt(line)
        if cmd_text is None:
            continue
        for piece in split_prompts(cmd_text):
            try:
                piece = cut_comment(piece)
                if not piece:
                    continue
                m = _ASSIGN.match(piece)
                if m and " " not in m.group(1):
                    rhs = expand(m.group(2), variables)
                    try:
                        words = shlex.split(rhs)
                    except ValueError as e:
                        raise ScriptError(f"{e}") from None
                    if len(words) <= 1:
                        variables[m.group(1)] = words[0] if words else ""
                        continue
                expanded = expand(piece, variables)
                try:
                    argv = shlex.split(expanded)
                except ValueError as e:
                    raise ScriptError(f"{e}") from None
            except ScriptError as e:
                return fail(no, str(e))
            while argv and argv[0] == "sudo":
                argv.pop(0)
                while argv and argv[0].startswith("-"):
                    argv.pop(0)
            if not argv:
                continue
            pipe: list[str] | None = None
            if "|" in argv:
                k = argv.index("|")
                pipe = argv[k + 1:]
                argv = argv[:k]
                if not pipe or pipe[0] != "grep" or "|" in pipe:
                    return fail(no, f"unsupported pipe '| {' '.join(pipe[:1])}' (only '| grep PATTERN')")
                if not argv:
                    return fail(no, "a pipe needs a command before it")
            bad = next((a for a in argv if a in _OPERATORS), None)
            if bad is not None:
                return fail(no, f"unsupported shell operator '{bad}'")
            word = argv[0]
            if word == "ctswitch" and len(argv) > 1 and argv[1] in TOOLS and argv[1] != "run":
                tool, args = argv[1], argv[2:]
            else:
                tool, args = tool_of(word), argv[1:]
            if tool is None:
                return fail(no, f"unsupported command '{word}'")
            display = " ".join(shlex.quote(a) if a not in (">", ">>") else a for a in argv)
            if pipe is not None:
                display += " | " + " ".join(shlex.quote(a) for a in pipe)
            if echo:
                out.append(f"+ {display}\n")
            res = dispatch(switch, tool, args, ctx)
            if res.code != 0:
                out.append(res.out)
                return fail(no, f"'{display}' failed with exit status {res.code}", res.code, res.err)
            text_out = res.out
            if pipe is not None:
                try:
                    text_out = _grep(text_out, pipe[1:])
                except (ScriptError, re.error) as e:
                    return fail(no, str(e))
            out.append(text_out)
            out.append(res.err)
            changed = changed or res.changed
    return Result(out="".join(out), changed=changed)


def run(switch, argv: list[str], ctx=None) -> Result:
    """``ctswitch run FILE|-``."""
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        if argv and argv[0] in ("-h", "--help"):
            from .dispatch import TOOLS
            return Result(out=TOOLS["run"].usage)
        return Result(err="usage: ctswitch run FILE|-\n", code=2)
    path = argv[0]
    if path == "-":
        text = getattr(ctx, "stdin", None) if ctx is not None else None
        if text is None:
            return Result(err="ctswitch run: -: no script on stdin\n", code=1)
        name = "<stdin>"
    else:
        full = path if os.path.isabs(path) or ctx is None else os.path.join(getattr(ctx, "cwd", "") or "", path)
        try:
            with open(full, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            return Result(err=f"ctswitch run: {path}: {e.strerror}\n", code=1)
        name = path
    return run_text(switch, text, name, ctx)
