"""`ros-ground lifecycle NODE [TRANSITION]`: a lifecycle node's state, or a transition of it.

What `ros2 lifecycle get/set` does, for installs without it: the PyPI ROS 2 wheels have no
rosidl_runtime_py, which `ros2 lifecycle set` and `ros2 service call` import, so after a failed
configure a robot integrator on such an install had no shell command to configure again.
"""

from __future__ import annotations

import sys

import rclpy
from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions, GetState
from rclpy.signals import SignalHandlerOptions

# seconds to wait for the node's services and quick answers, and for a configure's answer,
# which comes once the models are loaded (and, with compile on, the decode step compiled: ~40 s
# on a 2-core CPU; real weights from a slow disk take minutes)
TIMEOUT_S = 10.0
CONFIGURE_TIMEOUT_S = 300.0


class Unanswered(TimeoutError):
    """A service that exists did not answer in time: the call may still be running."""


def run_lifecycle(args) -> int:
    """The node's state (no transition) or the transition's outcome, printed; 0 when done, 1
    when the node refused it (its log says why) or it is not available from this state, 2 when
    no such node answers within `args.timeout` seconds (None: TIMEOUT_S), 3 when the node is
    there but its transition has not answered within `args.timeout` (None: TIMEOUT_S, a
    configure CONFIGURE_TIMEOUT_S): it may still be running."""
    from ros_ground.nodes.common import check_domain_id, check_ros_name

    target = check_ros_name(args.node, "node", node=True)  # ValueError: a usage error, 2
    timeout = TIMEOUT_S if args.timeout is None else args.timeout
    waits = args.timeout or (CONFIGURE_TIMEOUT_S if args.transition == "configure" else TIMEOUT_S)
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    check_domain_id()  # ValueError: a usage error, 2
    node = rclpy.create_node("ros_ground_lifecycle")
    try:
        return _run(node, target, args.transition, timeout, waits)
    except Unanswered as exc:
        print(f"ros-ground lifecycle: {exc}", file=sys.stderr)
        return 3
    except TimeoutError as exc:
        print(f"ros-ground lifecycle: {exc}", file=sys.stderr)
        return 2
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _call(node, srv_type, name: str, request, timeout_s: float):
    client = node.create_client(srv_type, name)
    try:
        if not client.wait_for_service(timeout_sec=timeout_s):
            target = name.rpartition("/")[0]
            running = {f"{ns.rstrip('/')}/{n}" for n, ns in node.get_node_names_and_namespaces()}
            if target in running:
                raise TimeoutError(f"{target} is running but has no service {name}: it may not be "
                                   "a lifecycle node")
            raise TimeoutError(f"no service {name}: is the node running (`ros2 node list`), "
                               "under this name and namespace?")
        future = client.call_async(request)
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout_s)
        if not future.done():
            raise Unanswered(f"{name} did not answer within {timeout_s:g} s")
        return future.result()
    finally:
        node.destroy_client(client)


def _run(node, target: str, transition: str | None, timeout_s: float,
         transition_timeout_s: float = CONFIGURE_TIMEOUT_S) -> int:
    """`run_lifecycle`'s work: services awaited `timeout_s`, the transition's answer
    `transition_timeout_s` seconds; Unanswered when that does not come."""
    try:
        state = _call(node, GetState, f"{target}/get_state", GetState.Request(), timeout_s)
    except Unanswered as exc:  # its services exist: the node is there, its executor busy
        raise Unanswered(f"{exc}: a node busy in a transition answers no service until it is "
                         "done (a configure loads the models, with compile on compiles too); ask "
                         "again later, or wait longer with --timeout") from None
    if transition is None:
        print(state.current_state.label)
        return 0
    available = _call(node, GetAvailableTransitions, f"{target}/get_available_transitions",
                      GetAvailableTransitions.Request(), timeout_s).available_transitions
    found = next((t.transition for t in available if t.transition.label == transition), None)
    if found is None:
        print(f"ros-ground lifecycle: {target} is {state.current_state.label}: no '{transition}' "
              f"from there (available: {', '.join(t.transition.label for t in available) or 'none'})",
              file=sys.stderr)
        return 1
    try:
        done = _call(node, ChangeState, f"{target}/change_state",
                     ChangeState.Request(transition=found), transition_timeout_s)
    except Unanswered:
        # the node answered get_state just now: it is there, busy with the transition (a
        # configure loading models), which goes on without this command
        raise Unanswered(
            f"{target} was {state.current_state.label} and has not finished '{transition}' "
            f"within {transition_timeout_s:g} s; it may still be running (a configure loads the "
            f"models, with compile on compiles too): see its state later with `ros-ground "
            f"lifecycle {target}`, or wait longer with --timeout") from None
    after = _call(node, GetState, f"{target}/get_state", GetState.Request(), timeout_s)
    if not done.success:
        print(f"ros-ground lifecycle: {target} refused '{transition}' and is "
              f"{after.current_state.label}; its log says why", file=sys.stderr)
        return 1
    print(f"{transition}: {target} is {after.current_state.label}")
    return 0
