"""Every node process ends within 5 s of ONE SIGINT or SIGTERM, idle or busy, with exit status 0.

Each case starts the executable (tiny models), waits until it is active and spinning (its
lifecycle state answers), makes it busy if asked (a generation streaming feedback, or the
proposal generator running on a streamed frame), sends one signal and times the exit.
ROS_GROUND_SHUTDOWN_REPEAT=20 runs each case 20 times (about an hour on 2 busy CPU cores).

The start is covered too, as the console scripts run it (ros_ground.nodes.process): a signal
while the modules import torch, while a model loads in the autostart configure or in a
configure asked for over the lifecycle service, or while the sim camera builds its scene
(tests/slow_start.py makes those loads last), even inside one C call, ends the process cleanly
within 5 s; a cleanup stuck in a C call is ended by the watchdog, with status 1. Those cases
run once each.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from ros_ground_msgs.action import Ground  # noqa: E402
from ros_ground_msgs.msg import EntityProposals, GroundedResponse  # noqa: E402

from ros_ground.nodes.common import RELIABLE  # noqa: E402
from ros_ground.nodes.conversions import rgb_to_image_msg  # noqa: E402
from ros_ground.nodes.process import EXIT_WITHIN_S as WATCHDOG_S  # noqa: E402
from tests.ros_helpers import Client, process_output, random_rgb, start_node_process  # noqa: E402
from tests.slow_start import MARK  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

EXIT_WITHIN_S = 5.0
REPEAT = int(os.environ.get("ROS_GROUND_SHUTDOWN_REPEAT", "1"))
PARAMS = {"model": "tiny", "sam_model": "tiny", "device": "cpu", "max_new_tokens": 400,
          "queue_size": 3, "min_period_s": 0.0, "points_per_side": 8}
# executable module -> the nodes it hosts
EXECUTABLES = {
    "ros_ground.nodes.grounding_node": ("grounding_node",),
    "ros_ground.nodes.mask_proposal_node": ("mask_proposal_node",),
    "ros_ground.nodes.container": ("grounding_node", "mask_proposal_node"),
}
# console scripts (ros_ground.nodes.process functions, as setup.py names them) -> what their
# start logs once it is over (the proposal node logs nothing)
ENTRIES = {"grounding_node": "active:", "mask_proposal_node": None, "sim_camera_node": "scene 0:",
           "ground_container": "active:"}
ROOT = Path(__file__).resolve().parent.parent


def _wait_active(client: Client, namespace: str, nodes, proc, timeout: float = 120.0) -> None:
    for name in nodes:
        service = client.node.create_client(GetState, f"{namespace}/{name}/get_state")
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, process_output(proc)[-3000:]
            assert time.monotonic() < deadline, f"{name} not active:\n{process_output(proc)[-3000:]}"
            if service.wait_for_service(timeout_sec=1.0):
                # a request sent before the server matched this client's response reader gets
                # no response (seen once in 40 starts on a loaded machine): ask again
                future = service.call_async(GetState.Request())
                if not client.wait(future.done, 10.0):
                    service.remove_pending_request(future)
                    continue
                if future.result().current_state.id == State.PRIMARY_STATE_ACTIVE:
                    break
            time.sleep(0.2)
        client.node.destroy_client(service)


def _make_busy(client: Client, nodes) -> list:
    """Make the process busy; the result futures of its `ask` goals (one running, two queued)."""
    client.stream(random_rgb(48, 64))
    if "grounding_node" in nodes:
        assert client.action.wait_for_server(timeout_sec=30)
        feedback = []
        goal = Ground.Goal(prompt="Describe the scene.", image=rgb_to_image_msg(random_rgb(48, 64)))
        sent = [client.action.send_goal_async(goal, feedback_callback=feedback.append)
                for _ in range(3)]
        handles = [client.wait_future(f, 30) for f in sent]
        assert all(h.accepted for h in handles)
        results = [h.get_result_async() for h in handles]  # asked for at once, as clients do
        assert client.wait(lambda: feedback or results[0].done(), 60)
        assert feedback, f"the generation never started: {results[0].result().result.response}"
        return results
    else:
        proposals = []
        sub = client.node.create_subscription(EntityProposals, "proposals", proposals.append,
                                              RELIABLE)
        # the generator runs back to back (min_period_s 0): after one result the next is running
        assert client.wait(lambda: proposals, 60), "no proposals"
        client.node.destroy_subscription(sub)
        return []


@pytest.mark.timeout(300 + 120 * REPEAT)  # each try starts a process: tens of seconds under load
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("module", list(EXECUTABLES), ids=lambda m: m.rsplit(".", 1)[1])
def test_one_signal_ends_the_process(ros, module, signum, busy):
    nodes = EXECUTABLES[module]
    for i in range(REPEAT):
        namespace = f"/stop_{os.getpid()}_{module.rsplit('.', 1)[1]}_{int(signum)}_{int(busy)}_{i}"
        proc = start_node_process(module, PARAMS, namespace=namespace)
        client = None
        try:  # the process is ended whatever fails, the client's start included
            client = Client(namespace=namespace)
            _wait_active(client, namespace, nodes, proc)
            results = _make_busy(client, nodes) if busy else []
            sent, sent_wall = time.monotonic(), time.time()  # wall clock: compare with the log
            proc.send_signal(signum)
            try:
                code = proc.wait(timeout=EXIT_WITHIN_S + 10)
            except Exception:
                code = None
            took = time.monotonic() - sent
            output = process_output(proc)[-3000:]
            when = f"try {i}: {took:.1f} s after the signal at {sent_wall:.3f}"
            print(f"{module.rsplit('.', 1)[1]} {signal.Signals(signum).name} "
                  f"{'busy' if busy else 'idle'} try {i}: exit {code} {took:.2f} s after the signal")
            assert code == 0, f"{when}: exit status {code}\n{output}"
            assert took < EXIT_WITHIN_S, f"{when}: exited too late\n{output}"
            assert "Traceback" not in output, output
            # the goals answered at the stop get their result: else their clients wait forever
            client.wait(lambda futures=results: all(f.done() for f in futures), 2)
            answered = [f.done() for f in results]
            assert all(answered), f"{when}: {sum(answered)} of {len(results)} goals got a result"
            assert {f.result().result.response.status for f in results} <= {GroundedResponse.STATUS_CANCELED}
        finally:
            if client is not None:
                client.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _start(args: list[str], params: dict = PARAMS, namespace: str = "") -> subprocess.Popen:
    cmd = [sys.executable, *args, "--ros-args"]
    for name, value in params.items():
        cmd += ["-p", f"{name}:={value}"]
    if namespace:
        cmd += ["-r", f"__ns:={namespace}"]
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    proc.log = log
    return proc


def _wait_for(proc, predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"exited ({proc.returncode}) before {what}:\n" \
                                    f"{process_output(proc)[-3000:]}"
        assert time.monotonic() < deadline, f"no {what}:\n{process_output(proc)[-3000:]}"
        time.sleep(0.05)


def _signal_and_time(proc, signum) -> tuple[int | None, float, str]:
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        code = proc.wait(timeout=EXIT_WITHIN_S + 10)
    except subprocess.TimeoutExpired:
        code = None
    took = time.monotonic() - sent
    print(f"{signal.Signals(signum).name}: exit {code} {took:.2f} s after the signal")
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return code, took, process_output(proc)[-3000:]


def _catches_sigterm(pid: int) -> bool:
    """The process has a handler for SIGTERM (Python's own startup installs none)."""
    with open(f"/proc/{pid}/status") as status:
        caught = next(line for line in status if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.parametrize("later", [0.0, 1.0], ids=["at_once", "1s_later"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_a_signal_while_importing_ends_the_process(entry, signum, later):
    """The console script installs the handlers before the node module imports torch: a signal
    as soon as they are in, or a second later (inside the imports of numpy, torch, ...)."""
    proc = _start(["-c", f"from ros_ground.nodes.process import {entry}; {entry}()"])
    _wait_for(proc, lambda: _catches_sigterm(proc.pid), 30, "stop-on-signal handlers")
    time.sleep(later)
    code, took, output = _signal_and_time(proc, signum)
    assert code == 0 and took < EXIT_WITHIN_S, f"{took:.1f} s, exit status {code}\n{output}"
    assert "Traceback" not in output, output
    if not later:
        assert ENTRIES[entry] is None or ENTRIES[entry] not in output, f"start was over:\n{output}"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_a_signal_while_loading_ends_the_process(entry, signum):
    """A model load in the autostart configure (the sim camera: its scene) is abandoned."""
    proc = _start(["-m", "tests.slow_start", entry])
    _wait_for(proc, lambda: MARK in process_output(proc), 120, "slow load")
    code, took, output = _signal_and_time(proc, signum)
    assert code == 0 and took < EXIT_WITHIN_S, f"{took:.1f} s, exit status {code}\n{output}"
    assert "Traceback" not in output, output
    assert ENTRIES[entry] is None or ENTRIES[entry] not in output, f"the start was over:\n{output}"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_configure_asked_over_the_service_ends_the_process(ros, signum):
    """The load runs on an executor thread: the spin loop stops, and the process exits
    without waiting for the load (the interpreter would join that thread)."""
    namespace = f"/stop_{os.getpid()}_service_{int(signum)}"
    proc = _start(["-m", "tests.slow_start", "grounding_node"], {**PARAMS, "autostart": False},
                  namespace)
    client = None
    try:  # the process is ended whatever fails, the client's start included
        client = Client(namespace=namespace)
        service = client.node.create_client(ChangeState, f"{namespace}/grounding_node/change_state")
        _wait_for(proc, lambda: service.wait_for_service(timeout_sec=0.5), 120, "change_state")
        service.call_async(ChangeState.Request(
            transition=Transition(id=Transition.TRANSITION_CONFIGURE)))
        _wait_for(proc, lambda: MARK in process_output(proc), 60, "slow load")
        code, took, output = _signal_and_time(proc, signum)
    finally:
        if client is not None:
            client.close()  # its node's clients with it
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0 and took < EXIT_WITHIN_S, f"{took:.1f} s, exit status {code}\n{output}"
    assert "Traceback" not in output, output


def test_a_signal_while_a_load_is_inside_a_c_call_ends_the_process():
    """A signal handler cannot run while the main thread is inside one C call; the watchdog
    hears of the signal through the wakeup fd and, the start being all there is, ends it."""
    proc = _start(["-m", "tests.slow_start", "grounding_node", "c_call"])
    _wait_for(proc, lambda: MARK in process_output(proc), 120, "slow load")
    time.sleep(0.5)  # inside the C call
    code, took, output = _signal_and_time(proc, signal.SIGTERM)
    assert code == 0 and took < 2.0, f"{took:.1f} s, exit status {code}\n{output}"
    assert "Traceback" not in output, output


def test_the_watchdog_ends_a_cleanup_stuck_in_a_c_call():
    """The nodes are up; the cleanup after the signal does not end: the watchdog ends the
    process EXIT_WITHIN_S after the signal, with status 1 and where each thread was."""
    proc = _start(["-m", "tests.slow_start", "grounding_node", "stuck_cleanup"])
    _wait_for(proc, lambda: "active:" in process_output(proc), 120, "active node")
    code, took, output = _signal_and_time(proc, signal.SIGTERM)
    assert code == 1 and WATCHDOG_S <= took < EXIT_WITHIN_S, f"{took:.1f} s, {code}\n{output}"
    assert "still running" in output and "stuck_stop_nodes" in output, output


@pytest.mark.parametrize("entry", ["sim_camera_node", "ground_container"])
@pytest.mark.parametrize("ros_args,said", [
    (["--params-file", "/nonexistent.yaml"], "Couldn't parse params file: '--params-file "
     "/nonexistent.yaml'. Error: Error opening YAML file"),
    (["-r"], "Couldn't parse trailing -r flag. No remap rule found."),
])
def test_arguments_rcl_cannot_parse_end_the_process_with_one_line(entry, ros_args, said):
    out = subprocess.run([sys.executable, "-c", f"from ros_ground.nodes.process import {entry}; "
                          f"{entry}()", "--ros-args", *ros_args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "[ros_ground] cannot start: " in out.stderr and f"{said}\n" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "arguments.c" not in out.stderr


@pytest.mark.parametrize("domain,said", [
    ("300", "ROS_DOMAIN_ID 300 is above 232, the largest a DDS middleware has ports for"),
    ("abc", "failed to initialize rcl: ROS_DOMAIN_ID is not an integral number"),
])
def test_a_domain_id_dds_cannot_use_ends_the_process_with_one_line(domain, said):
    """Fast DDS ended the process inside node creation with status 1 and only its own log line."""
    out = subprocess.run([sys.executable, "-c", "from ros_ground.nodes.process import sim_camera_node; "
                          "sim_camera_node()"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ROS_DOMAIN_ID": domain})
    assert out.returncode == 2, out.stderr
    assert f"[ros_ground] cannot start: {said}" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "RTPS" not in out.stderr, out.stderr
    if domain == "300":  # the CLI's ROS subcommands say it as a usage error
        for command in (["ask", "Where is the mug?"], ["lifecycle", "/ground/grounding_node"],
                        ["demo", "--out", tempfile.mkdtemp()]):
            out = subprocess.run([sys.executable, "-m", "ros_ground.nodes.cli", *command],
                                 capture_output=True, text=True, timeout=120,
                                 env={**os.environ, "ROS_DOMAIN_ID": domain})
            assert out.returncode == 2 and said in out.stderr, out.stderr
            assert "Traceback" not in out.stderr and "RTPS" not in out.stderr, out.stderr


def test_exit_now_while_logging_is_half_imported():
    """A signal landing while `logging` was being imported (ground_container imports it) made
    exit_now raise "partially initialized module 'logging' has no attribute 'shutdown'": exit
    status 1, not the signal's 0."""
    code = ("import sys, types; sys.modules['logging'] = types.ModuleType('logging'); "
            "from ros_ground.nodes.process import exit_now; exit_now(0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
