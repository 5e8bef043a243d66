"""The benchmarks' command lines: --help prints the usage, a mistyped option or name is a one-line
error with exit 2 before anything runs (it used to run the whole benchmark), and run_all hands each
module only the options it takes."""

import pytest
from bench import run_all
from bench.common import check_flags

FLAGS = {"--quick": "short", "--no-save": "print only"}


def test_help_prints_the_usage_and_exits_0(capsys):
    with pytest.raises(SystemExit) as e:
        check_flags(["--help"], FLAGS, "bench_x", ("a", "b"))
    assert e.value.code == 0
    assert capsys.readouterr().out == ("usage: python -m bench.bench_x [--quick] [--no-save] [a|b...]\n"
                                       "  --quick      short\n  --no-save    print only\n")


@pytest.mark.parametrize("argv, what", [(["--quik"], "option '--quik'"), (["c"], "argument 'c'"),
                                        (["--quick", "-x"], "option '-x'")])
def test_unknown_option_or_argument_exits_2_with_one_line(capsys, argv, what):
    with pytest.raises(SystemExit) as e:
        check_flags(argv, FLAGS, "bench_x", ("a", "b"))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == f"bench.bench_x: unknown {what} (usage: python -m bench.bench_x [--quick] [--no-save] [a|b...])\n"


def test_known_flags_and_positionals_pass():
    assert check_flags(["--quick", "a", "--no-save", "b"], FLAGS, "bench_x", ("a", "b")) is None


def test_run_all_rejects_unknown_names_and_options_before_running(capsys, monkeypatch):
    ran = []
    monkeypatch.setattr(run_all.importlib, "import_module", lambda name: ran.append(name) or _Mod())
    assert run_all.main(["bench_nope"]) == 2
    assert "no benchmark named 'bench_nope'" in capsys.readouterr().err
    assert run_all.main(["bench_fastpath", "--quik"]) == 2
    assert capsys.readouterr().err.startswith("bench.run_all: unknown option '--quik' (the selected benchmarks take: ")
    assert all(m.calls == [] for m in _Mod.made)


def test_run_all_gives_each_module_only_its_own_options(monkeypatch):
    mods = {"bench.bench_fastpath": _Mod({"--quick"}), "bench.bench_replay": _Mod({"--quick", "--no-ovs"})}
    monkeypatch.setattr(run_all, "modules", lambda: ["bench_fastpath", "bench_replay"])
    monkeypatch.setattr(run_all.importlib, "import_module", mods.__getitem__)
    assert run_all.main(["--quick", "--no-ovs"]) == 0
    assert mods["bench.bench_fastpath"].calls == [["--quick"]]
    assert mods["bench.bench_replay"].calls == [["--quick", "--no-ovs"]]


class _Mod:
    made: list = []

    def __init__(self, flags=frozenset({"--quick"})):
        self.FLAGS, self.calls = flags, []
        _Mod.made.append(self)

    def main(self, argv):
        self.calls.append(list(argv))
