"""`ros-ground`'s answers to what a new user gets wrong or cuts short: one line, no traceback,
exit 2 for bad input and 130 for Ctrl-C, whenever it comes."""

import subprocess
import sys

import numpy as np
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


@pytest.mark.parametrize("argv,words", [
    (["ground", "--model", "no-such-model", "--image", "IMG", "--overlay", "DIR/out.png"],
     "ros-ground ground: error: cannot write DIR/out.png: it is a folder"),
    (["eval", "--model", "no-such-model", "--dump", "FILE"],
     "ros-ground eval: error: --dump FILE: is a file, not a folder"),
    (["demo", "--out", "FILE"], "ros-ground demo: error: --out FILE: is a file, not a folder"),
    (["demo", "--out", "FILE/sub"],
     "ros-ground demo: error: --out FILE/sub: cannot be made: FILE is a file, not a folder"),
    (["train", "lmm", "--out", "FILE"], "ros-ground train: error: --out FILE: is a file, not a folder"),
])
def test_an_output_path_that_cannot_be_written_is_refused_before_the_work(tmp_path, capsys, argv,
                                                                          words):
    from ros_ground.image_files import save_png
    from ros_ground.nodes import cli as ros_cli

    save_png(tmp_path / "img.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "out.png").mkdir()
    (tmp_path / "file").write_text("")
    names = {"IMG": str(tmp_path / "img.png"), "DIR": str(tmp_path), "FILE": str(tmp_path / "file")}

    def fill(text):
        return text.replace("IMG", names["IMG"]).replace("DIR", names["DIR"]).replace(
            "FILE", names["FILE"])

    assert ros_cli.main([fill(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err == fill(words) + "\n", err


@pytest.mark.parametrize("text,words", [
    ("image_width: 4\nimage_height: 3\ncamera_matrix: {rows: 3, cols: 3, data: [.nan, 0, 2, 0, 5, 1, "
     "0, 0, 1]}\n", "camera_matrix in 'INFO': K must be finite"),
    (b"\x89PNG\r\n\x1a\n", "'INFO' is not a camera_calibration YAML file: not a YAML text file"),
])
def test_a_camera_info_file_error_names_the_file(tmp_path, text, words):
    from ros_ground.spatial import load_camera_info

    path = tmp_path / "info.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError) as raised:
        load_camera_info(path)
    assert words.replace("INFO", str(path)) in str(raised.value)


@pytest.mark.parametrize("args,expected", [
    (["--max-new-tokens", "abc"], "--max-new-tokens: expected an integer, got 'abc'"),
    (["--phrase-contrast", "abc"], "--phrase-contrast: expected a number, got 'abc'"),
    (["--max-new-token", "5"], "unrecognized arguments: --max-new-token 5"),  # no abbreviations
])
def test_a_bad_flag_value_says_what_was_expected(args, expected, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["ground", "--image", "x.png", *args])
    err = capsys.readouterr().err
    assert done.value.code == 2 and expected in err and "invalid literal" not in err, err


@pytest.mark.parametrize("value", ["8.5", "many"])
def test_a_params_file_value_of_the_wrong_type_says_what_was_expected(tmp_path, capsys, value):
    path = tmp_path / "p.yaml"
    path.write_text(f"grounding_node:\n  ros__parameters:\n    max_new_tokens: {value}\n")
    with pytest.raises(SystemExit):
        cli.main(["ground", "--image", "x.png", "--params-file", str(path)])
    err = capsys.readouterr().err
    got = value if value == "8.5" else f"'{value}'"  # YAML's double, and its text
    assert f"max_new_tokens: expected an integer, got {got} (the node declares it of type INTEGER" in err, err


def test_train_takes_no_abbreviated_flag(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["train", "lmm", "--step", "1"])
    assert done.value.code == 2 and "unrecognized arguments: --step" in capsys.readouterr().err


def test_max_image_pixels_is_the_only_limit_on_a_header(recwarn):
    # Pillow's own limit (MAX_IMAGE_PIXELS, ~89M: a warning; twice it: a refusal) was read as a
    # breach of the user's, "is above the limit of 500000000 ... declares 400000000 pixels"
    from test_image_codec import _declaring

    from ros_ground.image_codec import ImageDecodeError, check_declared_size

    check_declared_size(_declaring(".png", 20000, 20000), 500_000_000)
    check_declared_size(_declaring(".png", 10000, 10000), 200_000_000)
    assert not [w for w in recwarn if "DecompressionBomb" in w.category.__name__]
    with pytest.raises(ImageDecodeError, match="above the limit of 300000000 .* 400000000 pixels"):
        check_declared_size(_declaring(".png", 20000, 20000), 300_000_000)


def test_a_floating_point_image_file_says_which_images_are_read(tmp_path):
    import cv2

    from ros_ground.image_codec import ImageDecodeError
    from ros_ground.image_files import load_rgb

    path = str(tmp_path / "float.tiff")
    assert cv2.imwrite(path, np.random.RandomState(0).rand(6, 8, 3).astype(np.float32))
    with pytest.raises(ImageDecodeError, match="float32 .*floating-point.* 8- and 16-bit images"):
        load_rgb(path)


def test_the_embedded_model_loads_without_a_progress_bar(tmp_path):
    # transformers' "Loading weights 0%...100%" on every run, for a model that loads in a
    # fraction of a second; real weights keep theirs (minutes)
    from ros_ground.image_files import save_png

    save_png(tmp_path / "img.png", np.zeros((24, 32, 3), np.uint8))
    out = subprocess.run([sys.executable, "-m", "ros_ground.cli", "ground", "--image",
                          str(tmp_path / "img.png"), "--model", "sim", "--mode", "point",
                          "--max-new-tokens", "2"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Loading weights" not in out.stderr


class _NoServerYet:
    """An ActionClient whose server is still being waited for when Ctrl-C comes."""

    def __init__(self, *args):
        pass

    def wait_for_server(self, timeout_sec):
        raise KeyboardInterrupt

    def destroy(self):
        pass


def test_ctrl_c_before_a_goal_is_sent_does_not_say_one_was_canceled(monkeypatch):
    ask = pytest.importorskip("ros_ground.nodes.ask")
    monkeypatch.setattr(ask, "ActionClient", _NoServerYet)
    with pytest.raises(ask.Interrupted, match="^before a goal was sent$"):
        ask.ask(None, "hi")


@pytest.mark.parametrize("raised,words,code", [
    (TimeoutError("no action server at 'ask'"), "ros-ground ask: no action server at 'ask'\n", 2),
    ("interrupted", "ros-ground ask: interrupted (before a goal was sent)\n", 130),
])
def test_ask_errors_are_one_line_without_an_empty_one_first(monkeypatch, capsys, raised, words, code):
    ask = pytest.importorskip("ros_ground.nodes.ask")
    from ros_ground.nodes import cli as ros_cli

    def fails(*args, **kwargs):
        raise ask.Interrupted("before a goal was sent") if raised == "interrupted" else raised

    monkeypatch.setattr(ask, "ask", fails)
    assert ros_cli.main(["ask", "hi"]) == code
    assert capsys.readouterr().err == words


@pytest.mark.parametrize("argv,words", [
    (["lifecycle", "/sim/bad node"], "node '/sim/bad node' is not a ROS name: node name must not "
     "contain"),
    (["lifecycle", "/sim/../x"], "node '/sim/../x' is not a ROS name: namespace must not contain"),
    (["lifecycle", ""], "node '' is not a ROS name: node name must not be empty"),
    (["lifecycle", "/"], "node '/' is not a ROS name: node name must not be empty"),
    (["ask", "--namespace", "bad ns!", "hi"], "--namespace 'bad ns!' is not a ROS name"),
    (["ask", "--camera", "left cam", "hi"], "camera 'left cam' is not a valid ROS name"),
])
def test_a_bad_ros_name_is_one_line_before_ros_starts(capsys, argv, words):
    pytest.importorskip("rclpy")
    from ros_ground.nodes import cli as ros_cli

    assert ros_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ros-ground {argv[0]}: error: {words}") and err.count("\n") == 1, err


def test_a_running_node_without_lifecycle_services_is_said_to_be_no_lifecycle_node():
    rclpy = pytest.importorskip("rclpy")
    from lifecycle_msgs.srv import GetState

    from ros_ground.nodes import lifecycle_cli

    rclpy.init()
    try:
        plain = rclpy.create_node("plain_node", namespace="/t")
        with pytest.raises(TimeoutError, match="/t/plain_node is running .* may not be a lifecycle"):
            lifecycle_cli._call(plain, GetState, "/t/plain_node/get_state", GetState.Request(), 1.0)
        plain.destroy_node()
    finally:
        rclpy.try_shutdown()


def test_a_transition_still_running_is_said_to_be_so_not_that_no_node_answers(capsys):
    # a configure compiling for 40 s outlived the wait: "did not answer", exit 2, read as no node
    rclpy = pytest.importorskip("rclpy")
    import threading
    import time

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

    from ros_ground.nodes import lifecycle_cli

    class Slow(LifecycleNode):
        def on_configure(self, state):
            time.sleep(3.0)
            return TransitionCallbackReturn.SUCCESS

    rclpy.init()
    try:
        slow, cli_node = Slow("slow_node", namespace="/t"), rclpy.create_node("t_lifecycle_cli")
        executor = SingleThreadedExecutor()
        executor.add_node(slow)
        spinning = threading.Thread(target=executor.spin, daemon=True)
        spinning.start()
        with pytest.raises(lifecycle_cli.Unanswered) as caught:
            lifecycle_cli._run(cli_node, "/t/slow_node", "configure", 5.0, transition_timeout_s=1.0)
        said = str(caught.value)
        assert said.startswith("/t/slow_node was unconfigured and has not finished 'configure' "
                               "within 1 s; it may still be running"), said
        assert "`ros-ground lifecycle /t/slow_node`" in said
        with pytest.raises(lifecycle_cli.Unanswered) as caught:  # its state, while configuring
            lifecycle_cli._run(cli_node, "/t/slow_node", None, 0.5)
        assert str(caught.value) == (
            "/t/slow_node/get_state did not answer within 0.5 s: a node busy in a transition "
            "answers no service until it is done (a configure loads the models, with compile on "
            "compiles too); ask again later, or wait longer with --timeout")
        time.sleep(2.5)  # the configure ends: the node says so
        assert lifecycle_cli._run(cli_node, "/t/slow_node", None, 5.0) == 0
        assert capsys.readouterr().out.strip() == "inactive"
        executor.shutdown()
        slow.destroy_node()
        cli_node.destroy_node()
    finally:
        rclpy.try_shutdown()


def test_configure_waits_longer_and_a_still_running_transition_exits_3(monkeypatch, capsys):
    pytest.importorskip("rclpy")
    from ros_ground.nodes import cli as ros_cli
    from ros_ground.nodes import lifecycle_cli

    waited = []

    def run(node, target, transition, timeout, waits):
        waited.append((timeout, waits))
        raise lifecycle_cli.Unanswered("it may still be running")

    monkeypatch.setattr(lifecycle_cli, "_run", run)
    assert ros_cli.main(["lifecycle", "/sim/grounding_node", "configure"]) == 3
    assert ros_cli.main(["lifecycle", "/sim/grounding_node", "activate"]) == 3
    assert ros_cli.main(["lifecycle", "/sim/grounding_node", "configure", "--timeout", "5"]) == 3
    assert waited == [(10.0, 300.0), (10.0, 10.0), (5.0, 5.0)]
    assert capsys.readouterr().err.count("ros-ground lifecycle: it may still be running\n") == 3


def test_ask_names_a_server_in_the_graph_it_could_not_match_rather_than_its_own_namespace():
    # "no action server at '/sim/ask' ... Ground servers running: --namespace /sim" sent the user
    # back to the namespace given
    rclpy = pytest.importorskip("rclpy")
    import time

    from rclpy.action import ActionServer
    from ros_ground_msgs.action import Ground

    from ros_ground.nodes.ask import _elsewhere

    rclpy.init()
    try:
        server_node, client = rclpy.create_node("grounding_node", namespace="/t_unmatched"), \
            rclpy.create_node("t_ask_cli")
        server = ActionServer(server_node, Ground, "ask", execute_callback=lambda h: Ground.Result())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "/t_unmatched" not in _elsewhere(client, "/nobody/ask"):
            time.sleep(0.1)
        elsewhere = _elsewhere(client, "/nobody/ask")
        assert "Ground servers running: --namespace " in elsewhere and "/t_unmatched" in elsewhere
        same = _elsewhere(client, "/t_unmatched/ask")
        assert same.startswith(" A Ground server is at /t_unmatched/ask but this client did not "
                               "match it"), same
        assert "--namespace" not in same
        server.destroy()
        server_node.destroy_node()
        client.destroy_node()
    finally:
        rclpy.try_shutdown()
