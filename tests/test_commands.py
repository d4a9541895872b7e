"""The README is a contract: every command in its command table has working ``--help``, every option it shows
is an option of that command in the real parser, and the cheap commands run for real in a fresh home (exit 0, no
traceback)."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unlearnkit.cli import build_parser, main, parse

ROOT = Path(__file__).resolve().parents[1]


def documented_commands() -> list[str]:
    """Every `unlearnkit …` snippet in the README's command table (the rows starting with a command)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Commands"):]
    out = []
    for line in table.splitlines():
        if line.startswith("| `unlearnkit"):
            first_cell = line.split("|")[1]
            out += re.findall(r"`(unlearnkit[^`]*)`", first_cell)
    return out


def subcommand(snippet: str) -> list[str]:
    """The words that name the subcommand: up to the first option, placeholder or key=value."""
    words = []
    for w in snippet.split()[1:]:
        if w.startswith(("-", "[", "<")) or "=" in w or w.isupper():
            break
        words.append(w)
    return words


def test_the_readme_documents_the_main_commands():
    cmds = {" ".join(subcommand(c)) for c in documented_commands()}
    for required in ("run", "run vision", "eval", "unlearn", "ls methods", "ls tasks", "ls attacks", "runs ls", "runs show",
                     "runs compare", "calibrate", "data build", "models build", "report"):
        assert required in cmds, f"`unlearnkit {required}` is missing from the README's command table"


@pytest.mark.parametrize("snippet", documented_commands())
def test_every_documented_command_has_help(snippet, capsys):
    words = subcommand(snippet)
    with pytest.raises(SystemExit) as e:
        main([*words, "--help"])
    out = capsys.readouterr()
    assert e.value.code == 0, out.err
    assert out.out.startswith("usage: unlearnkit") and "Traceback" not in out.out + out.err


def command_parser(words: list[str]) -> argparse.ArgumentParser:
    """The real parser of the subcommand named by ``words`` (``run`` alone is ``run lm``; words after the last
    subcommand, e.g. ``agreement`` of ``judge agreement``, are positionals of it)."""
    if words[:1] == ["run"] and words[1:2] not in (["lm"], ["vision"]):
        words = ["run", "lm", *words[1:]]
    parser = build_parser()
    for w in words:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or w not in sub.choices:
            break
        parser = sub.choices[w]
    return parser


def as_argv(snippet: str) -> list[str]:
    """A README snippet as a command line: optional groups opened, the first of alternatives (``a\\|b``), each
    placeholder (PATH, RUN…, B) a value, ``...`` dropped."""
    argv = []
    for w in snippet.split()[1:]:
        w = w.split("\\|")[0].strip("[]")
        if w in ("...", "…", ""):
            continue
        argv.append("x" if w.rstrip("…").isupper() else w)
    return argv


def readme_problems(snippet: str) -> list[str]:
    """What the real parser does not accept in a README snippet: each ``--option`` (or ``-o``) it shows that is not
    an option of its subcommand, and a command line that does not parse."""
    known = {o for a in command_parser(subcommand(snippet))._actions for o in a.option_strings}
    shown = re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", snippet)
    problems = [f"{o} is not an option of `unlearnkit {' '.join(subcommand(snippet))}`" for o in shown
                if o not in known]
    try:
        parse(as_argv(snippet))
    except SystemExit as e:
        problems.append(f"`{snippet}` does not parse (exit {e.code})")
    return problems


@pytest.mark.parametrize("snippet", documented_commands())
def test_every_option_the_readme_shows_is_an_option_of_its_command(snippet, capsys):
    assert readme_problems(snippet) == []
    # the check can fail: the same command with an option its parser lacks is reported, twice (option, parse)
    bad = readme_problems(f"unlearnkit {' '.join(subcommand(snippet))} --no-such-option")
    assert len(bad) == 2 and bad[0].startswith("--no-such-option is not an option of"), bad


def test_the_option_check_sees_an_option_of_another_command():
    """`gradient` has no --reference (`layers` has): a parser that accepted it elsewhere does not hide that."""
    assert readme_problems("unlearnkit gradient --method ga --reference PATH")[0] == (
        "--reference is not an option of `unlearnkit gradient`")
    assert readme_problems("unlearnkit layers --method ga --reference PATH") == []
    assert as_argv("unlearnkit judge --run RUN [--backend local:smollm2-135m\\|openai:MODEL] [key=value ...]") == [
        "judge", "--run", "x", "--backend", "local:smollm2-135m", "key=value"]


@pytest.mark.parametrize("argv", [["ls", "methods"], ["ls", "tasks"], ["ls", "attacks"], ["runs", "ls"], ["runs", "ls", "--json"], ["data", "build"],
                                  ["run", "vision", "--list-methods"]])
def test_cheap_documented_commands_run_in_a_fresh_home(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNLEARNKIT_HOME", str(tmp_path))
    assert main(argv) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err and out.out.strip()


def test_the_installed_console_script_runs(tmp_path):
    """`unlearnkit --version` and `python -m unlearnkit --help` through the real entry points."""
    exe = Path(sys.executable).parent / "unlearnkit"
    r = subprocess.run([str(exe) if exe.exists() else "unlearnkit", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("unlearnkit ")
    r = subprocess.run([sys.executable, "-m", "unlearnkit", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "runs" in r.stdout and "Traceback" not in r.stderr


def test_runs_compare_prints_an_aligned_table_of_two_runs(tiny_models, capsys):
    """Two tiny runs (different learning rates) compared on the columns they share; a third made with another
    thread count is compared with a warning naming that difference (it decides float digits)."""
    import json

    import torch

    from unlearnkit.recipes.lm import run_benchmark

    from .test_run import tiny_run

    for name, lr in (("cmp-a", 1e-3), ("cmp-b", 5e-4), ("cmp-c", 5e-4)):
        threads = torch.get_num_threads()
        torch.set_num_threads(threads + 1 if name == "cmp-c" else threads)
        try:
            run_benchmark(tiny_run(name=name, methods=["ga"], defaults={"lr": lr, "epochs": 1, "batch_size": 4}),
                          say=lambda s: None)
        finally:
            torch.set_num_threads(threads)
    assert main(["runs", "compare", "cmp-a", "cmp-b"]) == 0
    out = capsys.readouterr().out
    assert "cmp-a: ga" in out and "cmp-b: ga" in out and "ES-exact unlearn ↓" in out and "cmp-a: Original" in out
    assert "warning" not in out  # one process, one setting
    assert main(["runs", "compare", "cmp-a", "cmp-c", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["provenance_differences"] == [
        f"torch_threads differs: cmp-a: {torch.get_num_threads()}; cmp-c: {torch.get_num_threads() + 1}"]
    assert main(["runs", "compare", "cmp-a", "cmp-c"]) == 0
    assert "warning: these runs differ in what decides their digits" in capsys.readouterr().out
    assert main(["runs", "compare", "cmp-a", "cmp-b", "--json", "--metrics", "mu,forget.es_exact"]) == 0
    data = json.loads(capsys.readouterr().out)
    labels = [r["label"] for r in data["rows"]]
    assert "cmp-b: ga" in labels and set(data["rows"][0]["values"]) == {"mu", "forget.es_exact"}
    assert main(["runs", "ls"]) == 0 and "cmp-b" in capsys.readouterr().out
    assert main(["runs", "show", "cmp-"]) == 2 and "ambiguous" in capsys.readouterr().err
    assert main(["runs", "compare", "cmp-a"]) == 2 and "at least two" in capsys.readouterr().err


def test_models_build_takes_a_run_presets_build_section(tmp_path):
    """`unlearnkit models build --config configs/smollm2.yaml` builds what that run uses: the preset's `build:`
    section (recipes with bf16 precision, ChatML prompt, the pretrained start) and θ_r for its forget split;
    key=value overrides still apply to the build config; a plain build config file works as before."""
    import argparse

    from unlearnkit.cli import build_config

    def args(config, *overrides):
        return argparse.Namespace(config=str(config), overrides=list(overrides))

    cfg = build_config(args(ROOT / "configs" / "smollm2.yaml", "finetune.epochs=3"))
    assert (cfg.pretrained, cfg.prompt, cfg.finetune.epochs, cfg.finetune.precision) == ("smollm2-135m", "chatml", 3,
                                                                                            "bf16")
    assert cfg.base.lr == 5e-4 and cfg.forget_splits == ["forget10"]
    (tmp_path / "run.yaml").write_text("forget: forget05\nbuild: {finetune: {epochs: 2}}\n")
    assert build_config(args(tmp_path / "run.yaml")).forget_splits == ["forget05", "forget10"]
    (tmp_path / "build.yaml").write_text("finetune: {epochs: 2}\n")
    plain = build_config(args(tmp_path / "build.yaml"))
    assert plain.finetune.epochs == 2 and plain.forget_splits == ["forget10"] and plain.pretrained is None
