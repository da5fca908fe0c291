"""A node executable whose start (or stop) is slow on purpose, so a test can signal it then.

    python -m tests.slow_start ENTRY [python|c_call|stuck_cleanup] [--ros-args ...]

ENTRY is one of the console-script functions in ros_ground.nodes.process (grounding_node,
mask_proposal_node, sim_camera_node, ground_container), started as its console script starts
it: the stop-on-signal handlers first. Then, by the mode:
- `python` (the default): every model load (ModelNode.on_configure, at autostart or when a
  configure is asked for over the lifecycle service) and the sim camera's scene print
  `SLOW_LOAD <what>` and run Python for up to 120 s first, as loading weights does;
- `c_call`: the same, in one C call that releases the GIL and does not return for minutes (a
  stand-in for a read or a CUDA call): the signal handler cannot run until it returns;
- `stuck_cleanup`: the start is as usual; the cleanup after the signal first spends minutes in
  one C call, so only the watchdog can end the process.
"""

from __future__ import annotations

import hashlib
import sys
import time

from ros_ground.nodes import process

MARK = "SLOW_LOAD"
LOAD_S = 120.0


def _slow(what: str, how: str) -> None:
    print(f"{MARK} {what}", flush=True)
    if how == "c_call":
        hashlib.pbkdf2_hmac("sha256", b"weights", b"salt", 10**9)  # minutes, in one call
        return
    deadline = time.monotonic() + LOAD_S
    while time.monotonic() < deadline:
        sum(range(10_000))


def main() -> None:
    entry = sys.argv.pop(1)
    modes = ("python", "c_call", "stuck_cleanup")
    how = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in modes else "python"
    process.stop_on_signals()

    if how == "stuck_cleanup":
        stop_nodes = process._stop_nodes

        def stuck_stop_nodes(*args):
            _slow("cleanup", "c_call")
            stop_nodes(*args)

        process._stop_nodes = stuck_stop_nodes
        getattr(process, entry)()

    import ros_ground.sim.scene as scene
    from ros_ground.nodes.lifecycle import ModelNode

    configure, generate = ModelNode.on_configure, scene.generate_scene

    def slow_configure(self, state):
        _slow(f"configure {self.get_name()}", how)
        return configure(self, state)

    def slow_scene(*args, **kwargs):
        _slow("scene", how)
        return generate(*args, **kwargs)

    ModelNode.on_configure, scene.generate_scene = slow_configure, slow_scene
    getattr(process, entry)()


if __name__ == "__main__":
    main()
