"""Test-side ROS plumbing: a client node that feeds a grounding node and collects its answers."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from ros_ground_msgs.action import Ground
from ros_ground_msgs.msg import GroundedResponse
from sensor_msgs.msg import Image
from std_msgs.msg import String

from ros_ground.nodes.common import RELIABLE
from ros_ground.nodes.conversions import rgb_to_image_msg


def random_rgb(height: int = 60, width: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 255, (height, width, 3), dtype=np.uint8)


class Client:
    """Publishes frames and commands, records responses and overlays; spins in a thread."""

    def __init__(self, namespace: str = "", image_topic: str = "image", context=None):
        self.node = rclpy.create_node("test_client", namespace=namespace, context=context)
        self.image_pub = self.node.create_publisher(Image, image_topic, qos_profile_sensor_data)
        self.command_pub = self.node.create_publisher(String, "command", RELIABLE)
        self.responses: list[GroundedResponse] = []
        self.overlays: list[Image] = []
        self.node.create_subscription(GroundedResponse, "response", self.responses.append,
                                      RELIABLE)
        self.node.create_subscription(Image, "overlay", self.overlays.append, RELIABLE)
        self.action = ActionClient(self.node, Ground, "ask")
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spinning = threading.Lock()
        self._frame: Image | None = None
        self._spin = threading.Thread(target=self._run, daemon=True)
        self._spin.start()

    def _run(self):
        last = 0.0
        while not self._stop.is_set():
            with self._spinning:
                self.executor.spin_once(timeout_sec=0.02)
            if self._frame is not None and time.monotonic() - last > 0.1:
                self.image_pub.publish(self._frame)  # a camera repeats; best effort may drop one
                last = time.monotonic()

    def action_client(self, **kwargs) -> ActionClient:
        """A further `ask` action client on this node, made while the spin thread waits.

        rclpy's ActionClient adds itself to the node before it creates its lock, so one made while
        another thread spins the node can raise in that thread and stop it for good
        (ros2/rclpy#1589, still in the wheels installed here).
        """
        with self._spinning:
            return ActionClient(self.node, Ground, "ask", **kwargs)

    def destroy_action_client(self, action: ActionClient) -> None:
        with self._spinning:
            action.destroy()

    def stream(self, rgb: np.ndarray | None, stamp_sec: int = 7, frame_id: str = "cam",
               msg: Image | None = None) -> Image:
        if msg is None:
            msg = rgb_to_image_msg(rgb)
            msg.header.stamp.sec = stamp_sec
            msg.header.frame_id = frame_id
        self._frame = msg
        # a node with image_qos `auto` subscribes reliable until it has seen this best-effort
        # publisher, then re-subscribes: frames sent before that never match
        self.wait(lambda: self.image_pub.get_subscription_count() > 0, timeout=5.0)
        return msg

    def command(self, text: str) -> None:
        self.command_pub.publish(String(data=text))

    def wait(self, predicate, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            # nothing completes once the spin thread has raised: say so, not "not in time"
            assert self._spin.is_alive() or self._stop.is_set(), "the client's spin thread died"
            time.sleep(0.02)
        return predicate()

    def wait_future(self, future, timeout: float = 60.0):
        assert self.wait(future.done, timeout), "future did not complete in time"
        return future.result()

    def close(self):
        self._stop.set()
        self._spin.join(timeout=5)
        self.action.destroy()
        self.executor.shutdown()
        self.node.destroy_node()


def start_node_process(executable_module: str, params: dict, namespace: str = "",
                       remaps: dict | None = None, args: tuple = ()) -> subprocess.Popen:
    """A node executable as its own process, with --ros-args parameters and remappings."""
    cmd = [sys.executable, "-m", executable_module, *args, "--ros-args"]
    for name, value in params.items():
        cmd += ["-p", f"{name}:={value}"]
    if namespace:
        cmd += ["-r", f"__ns:={namespace}"]
    for src, dst in (remaps or {}).items():
        cmd += ["-r", f"{src}:={dst}"]
    # a file, not a pipe: nobody reads a pipe while the test runs, and a node that logs more
    # than the pipe buffer (64 kB) would block on its next log line
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    proc.log = log
    return proc


def process_output(proc: subprocess.Popen) -> str:
    proc.log.flush()
    proc.log.seek(0)
    return proc.log.read()


def stop_process(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return process_output(proc)
