"""`ros-ground`'s answers to what a new user gets wrong or cuts short: one line, no traceback,
exit 2 for bad input and 130 for Ctrl-C, whenever it comes."""

import subprocess
import sys

import pytest

from ros_ground import cli


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("argv,name", [
    (["ground", "--image", "x.png"], "ground"), (["eval"], "eval"),
    (["lifecycle", "/sim/grounding_node"], "lifecycle"), (["ask", "hi"], "ask"), ([], ""),
])
def test_ctrl_c_while_the_parser_is_built_prints_one_line(monkeypatch, capsys, argv, name):
    from ros_ground.nodes import cli as ros_cli

    monkeypatch.setattr(cli, "build_parser", _interrupt)
    assert ros_cli.main(argv) == 130
    assert capsys.readouterr().err == f"ros-ground{' ' * bool(name)}{name}: interrupted\n"


def test_ctrl_c_while_a_params_file_is_read_prints_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cli, "file_flags", _interrupt)
    assert cli.main(["ground", "--image", "x.png", "--params-file", "config/sim.yaml"]) == 130
    assert capsys.readouterr().err == "ros-ground ground: interrupted\n"


def test_ctrl_c_while_a_ros_command_loads_prints_one_line(monkeypatch, capsys):
    from ros_ground.nodes import cli as ros_cli

    monkeypatch.setattr(ros_cli, "cmd_lifecycle", _interrupt)
    assert ros_cli.main(["lifecycle", "/sim/grounding_node"]) == 130
    assert capsys.readouterr().err == "ros-ground lifecycle: interrupted\n"


def test_torch_threads_is_checked_without_torch():
    # importing torch to check a thread count made every argument error, and a Ctrl-C while
    # the arguments were read, wait about 2 s for it
    code = ("import sys; from ros_ground import cli"
            "; a = cli.build_parser().parse_args(['ground', '--image', 'x', '--torch-threads', '1'])"
            "; assert a.torch_threads == 1"
            "; import pytest"
            "; exec('with pytest.raises(SystemExit):\\n cli.main([\"ground\", \"--image\", \"x\", "
            "\"--torch-threads\", \"100000\"])')"
            "; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert "torch_threads must be 0 (torch's default) .." in out.stderr


def test_the_entry_point_imports_next_to_nothing_before_it_can_catch_ctrl_c():
    # the console script imports ros_ground.nodes.cli before main runs: a Ctrl-C then (numpy's
    # import, ~0.1 s) was a KeyboardInterrupt traceback and a death by the signal
    code = "import sys, ros_ground.nodes.cli; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
