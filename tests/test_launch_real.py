"""The real ROS 2 tools on the package, as a robotics engineer uses them.

One colcon build per session (a clean copy of the repository as src/ros_ground, with
src/ros_ground/msg), then `ros2 launch ros_ground ground.launch.py` composed and as separate
processes with a params file (tiny models): node names, namespace, the image remapping and
every parameter of the file on its node (`ros2 param dump`), and a shutdown that needs no
escalation (Ctrl-C to the group once the nodes are up; and sim.launch.py stopped through launch
alone while its nodes load); `ros2 run` starts each executable and Ctrl-C ends it within 5 s.

The launch tools are not in any registry here: `make setup` installs them from
../shared/tools/install-ros2-cli (CI has ../shared beside the clone; ROS_GROUND_SHARED names
another place). Without them every test here skips, saying why.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ROS_GROUND_SHARED", ROOT.parent / "shared"))
BIN = Path(sys.executable).parent
NAMESPACE = "/bringup"
IMAGE = "/bringup_camera/image_raw"
# every value differs from the node's default, so a parameter that did not arrive shows
PARAMS = {
    "grounding_node": {"model": "tiny", "sam_model": "tiny", "device": "cpu", "dtype": "float32",
                       "max_new_tokens": 7, "default_prompt": "What is on the tray?",
                       "queue_size": 3, "proposal_max_age_s": 0.5, "publish_overlay": False},
    "mask_proposal_node": {"sam_model": "tiny", "device": "cpu", "points_per_side": 5,
                           "min_period_s": 2.5, "pred_iou_thresh": 0.5},
}
EXECUTABLES = ("grounding_node", "mask_proposal_node", "sim_camera_node", "ground_container")

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _params_file(tmp_path: Path, params: dict = PARAMS) -> Path:
    """A ROS parameters file giving each node of `params` its values under any namespace."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(
        {f"/**/{node}": {"ros__parameters": values} for node, values in params.items()}))
    return path


def _missing() -> str | None:
    if not (SHARED / "tools" / "install-ros2-cli").is_file():
        return (f"{SHARED / 'tools' / 'install-ros2-cli'} not found: the ROS 2 launch tools "
                "are not installable here (CI has ../shared beside the clone)")
    for tool in ("ros2", "colcon"):
        if not (BIN / tool).exists():
            return f"{tool} is not installed in {BIN}: run `make setup`"
    return None


if _missing():
    pytest.skip(_missing(), allow_module_level=True)


def _source_files() -> list[str]:
    """The files of a clean clone: tracked plus untracked-but-not-ignored (work in progress)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, check=True)
    return [f for f in out.stdout.decode().split("\0") if f and (ROOT / f).is_file()]


def _sourced_env(workspace: Path, env: dict) -> dict:
    """The environment after `source install/setup.bash`, as a shell on the robot has it."""
    out = subprocess.run(["bash", "-c", "source install/setup.bash && env -0"], cwd=workspace,
                         env=env, capture_output=True, check=True)
    pairs = (item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


@pytest.fixture(scope="module")
def ros2_env(tmp_path_factory, ros_domain_id):
    """A colcon workspace built from a clean copy; the environment its setup.bash gives."""
    workspace = tmp_path_factory.mktemp("colcon_ws")
    package = workspace / "src" / "ros_ground"
    for name in _source_files():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, package / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # the wheels-only venv is the ament prefix (on a robot: source /opt/ros/<distro>/setup.bash)
    env.update(AMENT_PREFIX_PATH=sys.prefix, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
               ROS_DOMAIN_ID=str(ros_domain_id))
    started = time.monotonic()
    build = subprocess.run(
        [str(BIN / "colcon"), "build", "--paths", "src/ros_ground", "src/ros_ground/msg",
         "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=1200)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    print(f"colcon build: {time.monotonic() - started:.0f} s")
    return workspace, _sourced_env(workspace, env)


def _run(env, *args, timeout=60) -> subprocess.CompletedProcess:
    # cwd: not the checkout, whose ros_ground a `python -c` would import before the installed one
    return subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=tempfile.gettempdir())


def test_build_installs_the_executables_where_ros2_run_looks(ros2_env):
    workspace, env = ros2_env
    libexec = workspace / "install" / "ros_ground" / "lib" / "ros_ground"
    assert sorted(p.name for p in libexec.iterdir()) == sorted(EXECUTABLES + ("ros-ground",))
    result = _run(env, "ros2", "pkg", "executables", "ros_ground")
    assert result.returncode == 0, result.stderr
    assert {line.split()[1] for line in result.stdout.splitlines()} >= set(EXECUTABLES)
    probe = _run(env, sys.executable, "-c", "import ros_ground; print(ros_ground.__file__)")
    assert probe.stdout.startswith(str(workspace / "install")), probe.stdout + probe.stderr


def _graph_node(context):
    import rclpy

    return rclpy.create_node("bringup_probe", context=context)


def _wait(predicate, timeout, proc=None, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.5)
    assert predicate(), what


def _is_active(probe, node: str) -> bool:
    from lifecycle_msgs.msg import State
    from lifecycle_msgs.srv import GetState
    from rclpy.executors import SingleThreadedExecutor

    client = probe.create_client(GetState, f"{node}/get_state")
    try:
        if not client.wait_for_service(timeout_sec=1.0):
            return False
        future = client.call_async(GetState.Request())
        executor = SingleThreadedExecutor(context=probe.context)
        executor.add_node(probe)
        executor.spin_until_future_complete(future, timeout_sec=10)
        executor.remove_node(probe)
        executor.shutdown()
        return future.done() and future.result().current_state.id == State.PRIMARY_STATE_ACTIVE
    finally:
        probe.destroy_client(client)


def _stop(proc, within: float) -> tuple[float, str]:
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
    try:
        proc.wait(timeout=within + 20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    took = time.monotonic() - sent
    proc.log.seek(0)
    return took, proc.log.read()


def _start(env, *args):
    """Start `args` as a terminal would: its own session, SIGINT at its default disposition.

    A process inherits an ignored SIGINT (a test run started with `&` from a script or under
    nohup has one), and Python then leaves it ignored: `ros2 launch` would never see the
    SIGINT these tests send (it relies on Python's handler). `env --default-signal=INT`
    (coreutils >= 8.31) resets it, as the README says to do for launch under such a parent.
    """
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(["env", "--default-signal=INT", *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            cwd=tempfile.gettempdir())
    proc.log = log
    return proc


def test_start_gives_the_child_sigint_at_its_default():
    """Under a parent that ignores SIGINT (as `cmd &` in a script does) the child still gets it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = _start(dict(os.environ), sys.executable, "-c",
                      "import signal; print(signal.getsignal(signal.SIGINT).__name__)")
        proc.wait(timeout=60)
    finally:
        signal.signal(signal.SIGINT, previous)
    proc.log.seek(0)
    assert proc.log.read().strip() == "default_int_handler"


@pytest.fixture(scope="module")
def probe():
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    node = _graph_node(context)
    yield node
    node.destroy_node()
    rclpy.try_shutdown(context=context)


@pytest.mark.parametrize("composed", ["true", "false"])
def test_ros2_launch_applies_names_remappings_and_every_parameter(ros2_env, probe, tmp_path,
                                                                  composed):
    workspace, env = ros2_env
    params_file = _params_file(tmp_path)
    proc = _start(env, "ros2", "launch", "ros_ground", "ground.launch.py",
                  f"params_file:={params_file}", f"namespace:={NAMESPACE.strip('/')}",
                  f"image:={IMAGE}", f"composed:={composed}")
    try:
        expected = {(name, NAMESPACE) for name in PARAMS}

        def names():
            return set(probe.get_node_names_and_namespaces())

        _wait(lambda: expected <= names(), 180, proc, "nodes did not appear")
        assert not {n for n, _ in names() if n == "ground_container"}, names()
        for node in PARAMS:
            # parameters: read back through the node's parameter services, by the CLI
            # (--no-daemon: a test leaves no ros2 daemon behind)
            for _ in range(10):  # the CLI's own node discovers the graph anew each time
                dump = _run(env, "ros2", "param", "dump", "--no-daemon", f"{NAMESPACE}/{node}",
                            timeout=120)
                if dump.returncode == 0:
                    break
                time.sleep(1.0)
            assert dump.returncode == 0, dump.stdout + dump.stderr
            values = yaml.safe_load(dump.stdout)[f"{NAMESPACE}/{node}"]["ros__parameters"]
            for name, value in PARAMS[node].items():
                assert values[name] == value, (node, name, values[name], value)
            # the image remapping and the namespace of the node's own topics
            _wait(lambda node=node: IMAGE in dict(probe.get_subscriber_names_and_types_by_node(
                node, NAMESPACE)), 60, proc, f"{node} does not subscribe to {IMAGE}")
        publishers = dict(probe.get_publisher_names_and_types_by_node("grounding_node", NAMESPACE))
        assert f"{NAMESPACE}/response" in publishers, publishers
    finally:
        took, output = _stop(proc, within=10)
    print(output[-3000:])
    _assert_clean_launch_stop(proc, output, took, processes=1 if composed == "true" else 2)


def _assert_clean_launch_stop(proc, output: str, took: float, processes: int) -> None:
    """Every process ended on launch's SIGINT with status 0: no escalation to SIGTERM or
    SIGKILL (launch's sigterm_timeout is 5 s), none died."""
    assert proc.returncode == 0, output[-3000:]
    for sign in ("escalating", "sending signal 'SIGTERM'", "SIGKILL", "process has died",
                 "Traceback"):
        assert sign not in output, f"{sign!r} in the launch output:\n{output[-3000:]}"
    assert output.count("process has finished cleanly") == processes, output[-3000:]
    assert took < 10, f"launch took {took:.1f} s to stop"


def test_ros2_launch_stopped_through_launch_alone_needs_no_escalation(ros2_env, probe, tmp_path):
    """sim.launch.py (camera + container) stopped as `ros2 launch` alone is signalled (a
    supervisor, a parent launch file), as soon as its nodes are in the graph: launch's own
    SIGINT reaches each node, most often while the models still load (the output says which),
    and each ends cleanly in time. tests/test_shutdown.py signals during a load for sure."""
    _, env = ros2_env
    params_file = _params_file(tmp_path)
    namespace = "/bringup_sim"
    proc = _start(env, "ros2", "launch", "ros_ground", "sim.launch.py",
                  f"params_file:={params_file}", f"namespace:={namespace.strip('/')}")
    try:
        expected = {(name, namespace) for name in ("sim_camera_node", *PARAMS)}
        _wait(lambda: expected <= set(probe.get_node_names_and_namespaces()), 180, proc,
              "nodes did not appear")
        proc.log.seek(0)
        loading = "active:" not in proc.log.read()
    finally:
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)  # launch alone: it signals its processes
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        took = time.monotonic() - sent
        proc.log.seek(0)
        output = proc.log.read()
    print(f"stopped {'while loading' if loading else 'when active'} in {took:.1f} s")
    print(output[-3000:])
    _assert_clean_launch_stop(proc, output, took, processes=2)
    assert "would have no camera" not in output  # a camera stopped with the rest: no failure


@pytest.mark.parametrize("executable", EXECUTABLES)
def test_ros2_run_starts_each_executable(ros2_env, probe, executable):
    _, env = ros2_env
    namespace = f"/run_{executable}"
    proc = _start(env, "ros2", "run", "ros_ground", executable, "--ros-args",
                  "-r", f"__ns:={namespace}", "-p", "model:=tiny", "-p", "sam_model:=tiny",
                  "-p", "device:=cpu")
    expected = {"grounding_node": {"grounding_node"}, "mask_proposal_node": {"mask_proposal_node"},
                "sim_camera_node": {"sim_camera_node"},
                "ground_container": {"grounding_node", "mask_proposal_node"}}[executable]
    try:
        _wait(lambda: {(n, namespace) for n in expected}
              <= set(probe.get_node_names_and_namespaces()), 180, proc,
              f"{executable} did not start its nodes")
        for node in expected - {"sim_camera_node"}:  # lifecycle nodes: wait until active
            _wait(lambda node=node: _is_active(probe, f"{namespace}/{node}"), 180, proc,
                  f"{node} did not become active")
    finally:
        # signalled as soon as its nodes are in the graph: the sim camera is still building its
        # scene then, the model nodes loading or just active
        took, output = _stop(proc, within=5)
    print(f"{executable}: stopped in {took:.1f} s")
    assert proc.returncode == 0 and took < 5, f"{took:.1f} s, exit {proc.returncode}\n{output}"
    assert "Traceback" not in output, output


def test_ros2_run_ros_ground_cli(ros2_env):
    _, env = ros2_env
    result = _run(env, "ros2", "run", "ros_ground", "ros-ground", "--help")
    assert result.returncode == 0 and "ask" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("launch_file, argument", [("ground.launch.py", "composed:=ture"),
                                                   ("ground.launch.py", "use_proposals:=no"),
                                                   ("sim.launch.py", "composed:=nope")])
def test_a_launch_argument_that_is_no_boolean_is_refused(ros2_env, launch_file, argument):
    # a typo must not quietly mean false (separate processes, or no proposals at all), nor
    # leave sim.launch.py's camera running after the error
    _, env = ros2_env
    result = _run(env, "ros2", "launch", "ros_ground", launch_file, argument, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    name, value = argument.split(":=")
    assert f"launch argument {name}: got '{value}', expected one of true, false, 1, 0" in output, \
        output
    assert "process started" not in output, output


@pytest.mark.parametrize("cameras, said", [
    ("[]", "cameras must name at least one camera"),
    ("[left, right", "is no YAML list of names"),
    ("[left, left]", "cameras must be distinct"),
])
def test_a_bad_camera_list_is_refused_naming_the_argument(ros2_env, cameras, said):
    # cameras:=[] and an unclosed list are refused naming the argument, not with launch's
    # "Expected 'value' to be one of [<class 'float'>, ...]" or a YAML traceback
    _, env = ros2_env
    result = _run(env, "ros2", "launch", "ros_ground", "ground.launch.py", f"cameras:={cameras}",
                  timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "launch argument cameras: " in output and said in output, \
        output
    assert "Traceback" not in output and "process started" not in output, output


def test_one_image_topic_for_several_cameras_is_refused_naming_the_mapping(ros2_env):
    # the nodes read left/image and right/image: /stereo/left/image_rect would reach neither
    _, env = ros2_env
    result = _run(env, "ros2", "launch", "ros_ground", "ground.launch.py", "cameras:=[left, right]",
                  "image:=/stereo/left/image_rect", timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "launch argument image: one topic '/stereo/left/image_rect' for the 2 cameras" in output \
        and 'image:="{left: /stereo/left/image_rect, right: ...}"' in output, output
    assert "Traceback" not in output and "process started" not in output, output


def test_a_camera_mapping_remaps_each_cameras_own_topics(ros2_env, probe, tmp_path):
    # two drivers: each camera's image and camera_info come from its own driver's topics
    _, env = ros2_env
    params_file = _params_file(tmp_path)
    namespace = "/stereo_bringup"
    proc = _start(env, "ros2", "launch", "ros_ground", "ground.launch.py",
                  f"params_file:={params_file}", f"namespace:={namespace.strip('/')}",
                  "cameras:=[left, right]",
                  "image:={left: /stereo/left/image_rect, right: /stereo/right/image_rect}",
                  "camera_info:={left: /stereo/left/camera_info, right: /stereo/right/camera_info}")
    expected = {"/stereo/left/image_rect", "/stereo/right/image_rect", "/stereo/left/camera_info",
                "/stereo/right/camera_info", f"{namespace}/left/depth", f"{namespace}/right/depth"}

    def subscribed(node):
        return set(dict(probe.get_subscriber_names_and_types_by_node(node, namespace)))

    try:
        _wait(lambda: ("grounding_node", namespace) in set(probe.get_node_names_and_namespaces()),
              180, proc, "grounding_node did not appear")
        _wait(lambda: expected <= subscribed("grounding_node"), 120, proc,
              f"grounding_node does not subscribe to {expected}")
        _wait(lambda: {"/stereo/left/image_rect", "/stereo/right/image_rect"}
              <= subscribed("mask_proposal_node"), 60, proc, "mask_proposal_node's images")
        assert not {t for t in subscribed("grounding_node") if t.endswith("/image")}
    finally:
        _, output = _stop(proc, within=10)
    assert "Traceback" not in output, output[-3000:]


def test_sim_launch_ends_when_its_camera_dies(ros2_env, tmp_path):
    # a sim camera refusing `width: 0` exits: the launch ends with it, rather than the container
    # running on, active, with no frames to ground and the error scrolled away in the log
    _, env = ros2_env
    params_file = _params_file(tmp_path, {**PARAMS, "sim_camera_node": {"width": 0}})
    result = _run(env, "env", "--default-signal=INT", "ros2", "launch", "ros_ground",
                  "sim.launch.py", f"params_file:={params_file}", "namespace:=dead_camera",
                  timeout=150)
    output = result.stdout + result.stderr
    assert "parameter width" in output and "sim_camera_node exited with code 1: the grounding " \
        "graph would have no camera, stopping it" in output, output[-3000:]
    assert result.returncode == 1, output[-3000:]  # a failed bring-up, for systemd or CI
    assert "Traceback" not in output, output[-3000:]
    assert re.search(r"\[ground_container-\d+\]: process has finished cleanly", output), output


def test_a_params_file_that_is_not_there_is_refused(ros2_env, tmp_path):
    # launch_ros warned "Parameter file path is not a file" and started the nodes on their
    # defaults: the 4.5 M-parameter sim model answering in place of the robot's
    _, env = ros2_env
    missing = tmp_path / "robot.yaml"
    result = _run(env, "ros2", "launch", "ros_ground", "ground.launch.py",
                  f"params_file:={missing}", timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"params_file '{missing}' is not a file" in output, output
    assert "process started" not in output, output


def test_a_params_file_for_other_nodes_is_refused_by_launch_and_named_by_the_node(
        ros2_env, tmp_path, probe):
    # /robot/grounding_node in a file launched with namespace:=ground applies to no node: it is
    # refused and named, or the graph would run the embedded sim models in place of the robot's
    _, env = ros2_env
    robot = tmp_path / "robot.yaml"
    robot.write_text(yaml.safe_dump({"/robot/grounding_node": {"ros__parameters": {"model": "x"}}}))
    result = _run(env, "ros2", "launch", "ros_ground", "ground.launch.py", "namespace:=ground",
                  f"params_file:={robot}", timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert (f"params_file: parameter file {robot} has no section for /ground/grounding_node "
            "(its sections: /robot/grounding_node)") in output, output
    assert "process started" not in output, output
    # ros2 run takes any file: the node says so in its log, and runs
    proc = _start(env, "ros2", "run", "ros_ground", "grounding_node", "--ros-args",
                  "-r", "__ns:=/ground", "--params-file", str(robot),
                  "-p", "model:=tiny", "-p", "sam_model:=tiny", "-p", "device:=cpu")
    try:
        _wait(lambda: ("grounding_node", "/ground") in set(probe.get_node_names_and_namespaces()),
              180, proc, "grounding_node did not start")
    finally:
        _, output = _stop(proc, within=5)
    assert f"parameter file {robot} has no section for /ground/grounding_node" in output, output


def test_an_including_launch_files_namespace_counts_for_the_params_file(ros2_env, probe, tmp_path):
    # under an including file's PushRosNamespace("robot") a file with /robot/grounding_node
    # sections is the node's, not one with no section for /grounding_node
    _, env = ros2_env
    params_file = tmp_path / "robot.yaml"
    params_file.write_text(yaml.safe_dump(
        {f"/robot/{node}": {"ros__parameters": values} for node, values in PARAMS.items()}))
    outer = tmp_path / "robot.launch.py"
    outer.write_text(
        "import os\n"
        "from ament_index_python.packages import get_package_share_directory\n"
        "from launch import LaunchDescription\n"
        "from launch.actions import GroupAction, IncludeLaunchDescription\n"
        "from launch.launch_description_sources import PythonLaunchDescriptionSource\n"
        "from launch_ros.actions import PushRosNamespace\n\n\n"
        "def generate_launch_description():\n"
        "    ground = os.path.join(get_package_share_directory('ros_ground'), 'launch',\n"
        "                          'ground.launch.py')\n"
        "    return LaunchDescription([GroupAction([PushRosNamespace('robot'),\n"
        "        IncludeLaunchDescription(PythonLaunchDescriptionSource(ground), launch_arguments=\n"
        f"            {{'params_file': '{params_file}'}}.items())])])\n")
    proc = _start(env, "ros2", "launch", str(outer))
    try:
        _wait(lambda: ("grounding_node", "/robot") in set(probe.get_node_names_and_namespaces()),
              180, proc, "/robot/grounding_node did not appear")
    finally:
        _, output = _stop(proc, within=10)
    assert "has no section" not in output, output[-3000:]
