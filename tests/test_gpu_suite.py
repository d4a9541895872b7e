"""benchmarks/gpu_suite.py: the budgeted GPU script's own mechanics, on a CPU (no GPU figure is checked here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", ROOT / "benchmarks" / "gpu_suite.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_stage_is_a_command_unlearnkit_accepts(suite):
    """Each stage's unlearnkit command line parses with the CLI's own parser (options, positional overrides): a
    renamed or unsupported option fails here, not on a GPU (`gradient`/`squeeze` take no --reference once did)."""
    from unlearnkit.cli import build_parser

    parser = build_parser()
    smol = {"model": "/m", "reference": "/r", "data": "/d"}
    names = ["env", "tiny", "bench", "smol_build", "smol_run", "smol_layers", "smol_squeeze", "smol_gradient",
             "smol_reliability"]
    parsed = 0
    for name in names:
        for cmd in suite.stage_commands(name, smol):
            if cmd[1:3] == ["-m", "unlearnkit"]:
                args = cmd[3:]
                if args[0] == "run" and args[1:2] not in (["lm"], ["vision"]):
                    args = ["run", "lm", *args[1:]]  # as `unlearnkit run` = `unlearnkit run lm`
                parser.parse_args(args)  # argparse exits (SystemExit 2) on anything it does not accept
                parsed += 1
    assert parsed == 8
    assert suite.stage_commands("smol_layers", smol)[0][-2:] == ["lr=2e-5", "epochs=5"]  # overrides after options


def test_a_stage_over_its_limit_is_stopped_with_its_children_and_the_rest_still_runs(suite, tmp_path):
    """A stage that outlives its limit is killed with its whole process group (here: a shell whose child sleeps);
    its partial output is kept; the summary records the timeout."""
    log = tmp_path / "log"
    with open(log, "w") as f:
        slow = suite.run_stage("slow", [["bash", "-c", "echo started; sleep 60 & wait"]], 6, f)
        fast = suite.run_stage("fast", [[sys.executable, "-c", "print('SMOL ' + '{\"model\": \"x\"}')"]], 30, f)
    assert slow["timed_out"] and slow["status"] == -9 and "started" in slow["out"]
    assert fast["status"] == 0 and suite._smol_of(fast["out"]) == {"model": "x"}
    assert "exit -9" in log.read_text()
    missing = suite.run_stage("nope", [["no-such-program-xyz"]], 10, open(tmp_path / "l2", "w"))
    assert missing["status"] == 0 and not missing["timed_out"]  # cannot start: logged, not fatal
    assert "cannot start" in (tmp_path / "l2").read_text()
    json.dumps({k: v for k, v in slow.items() if k != "out"})
