"""Measurement 5: streaming load on a grounding node in its own process.

The node runs as `python -m ros_ground.nodes.grounding_node --ros-args --params-file
config/sim.yaml` (the embedded default models). This process is the camera (rgb8 frames at
30 Hz, sensor-data QoS, fresh stamps) and the operator (one `std_msgs/String` command per
second on the reliable `command` topic); it records every GroundedResponse. Latency is command
publish -> response receipt (both here). Requests still waiting (commands sent minus responses
received) show whether a queue builds up; the node's RSS is sampled from /proc every second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np

from bench.common import (
    ROOT,
    log,
    median,
    p50_p99,
    rss_mb,
    spin_until_set,
    subprocess_env,
    tabletop_image,
    wait_until,
)

NAMESPACE = "/bench_stream"
PROMPT = "Describe the scene."


def start_node() -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ros_ground.nodes.grounding_node", "--ros-args",
           "--params-file", str(ROOT / "config" / "sim.yaml"), "-r", f"__ns:={NAMESPACE}",
           "--log-level", "warn"]
    return subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def stop_node(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def run_stream(node_ctx, quick: bool, camera_hz: float = 30.0, command_period_s: float = 1.0,
               proc: subprocess.Popen | None = None, duration_s: float | None = None) -> dict:
    """`node_ctx`: an rclpy node of this process (for its context); `proc`: a grounding node
    process already started by `start_node` (one is started otherwise)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from ros_ground_msgs.msg import GroundedResponse
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from ros_ground.nodes.common import RELIABLE
    from ros_ground.nodes.conversions import rgb_to_image_msg

    duration_s = duration_s or (15.0 if quick else 120.0)
    warmup_commands = 1 if quick else 2
    proc = proc or start_node()
    node = rclpy.create_node("bench_stream_client", namespace=NAMESPACE,
                             context=node_ctx.context)
    image_pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    command_pub = node.create_publisher(String, "command", RELIABLE)
    received: dict[int, tuple] = {}  # request number -> (t, status, phrases, words, node cpu)
    lock = threading.Lock()

    def on_response(msg: GroundedResponse):
        now = time.perf_counter()
        node_cpu = cpu_ms(proc.pid)
        try:
            number = int(msg.request_id.rsplit("-", 1)[1])
        except (IndexError, ValueError):
            return
        with lock:
            received[number] = (now, int(msg.status), len(msg.phrases), len(msg.text.split()),
                                node_cpu)

    node.create_subscription(GroundedResponse, "response", on_response, RELIABLE)
    executor = SingleThreadedExecutor(context=node_ctx.context)
    executor.add_node(node)
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: spin_until_set(executor, stop), daemon=True)
    spinner.start()

    rgb = tabletop_image(240, 320, seed=1)  # sim.yaml's camera size
    template = rgb_to_image_msg(rgb)
    template.header.frame_id = "bench_camera"
    frames_sent = [0]

    def camera():
        period = 1.0 / camera_hz
        next_t = time.perf_counter()
        while not stop.is_set():
            template.header.stamp = node.get_clock().now().to_msg()  # a new frame each time
            image_pub.publish(template)
            frames_sent[0] += 1
            next_t += period
            time.sleep(max(0.0, next_t - time.perf_counter()))

    sent: dict[int, float] = {}
    sent_cpu: dict[int, float | None] = {}
    load: list[float] = []
    rss: list[tuple[float, float]] = []
    outstanding: list[int] = []
    result: dict = {}
    try:
        log("stream: waiting for the grounding node to load its models and activate")
        if not wait_until(lambda: command_pub.get_subscription_count() > 0
                          or proc.poll() is not None, 300, poll=0.05):
            # sim.yaml compiles the decode step while the node configures (~30-60 s cold)
            raise RuntimeError("grounding node did not activate in 300 s")
        if proc.poll() is not None:
            raise RuntimeError(f"grounding node exited: {stop_node(proc)[-2000:]}")
        cam = threading.Thread(target=camera, daemon=True)
        cam.start()
        time.sleep(0.3 if quick else 1.0)
        log(f"stream: {duration_s:.0f} s at {camera_hz:.0f} Hz camera, 1 command / "
            f"{command_period_s:.0f} s")
        number = 0
        t_start = time.perf_counter()
        total = warmup_commands + int(duration_s / command_period_s)
        for k in range(total):
            target = t_start + k * command_period_s
            time.sleep(max(0.0, target - time.perf_counter()))
            number += 1
            sent_cpu[number] = cpu_ms(proc.pid)
            sent[number] = time.perf_counter()
            command_pub.publish(String(data=PROMPT))
            load.append(os.getloadavg()[0])
            with lock:
                outstanding.append(number - 1 - len(received))  # before this command
            rss.append((time.perf_counter() - t_start, rss_mb(proc.pid) or float("nan")))
        wait_until(lambda: len(received) >= number, 30, poll=0.05)
        frames = frames_sent[0]
        elapsed = time.perf_counter() - t_start
        stop.set()
        cam.join(timeout=2)
        with lock:
            got = dict(received)
        latencies, statuses, phrases, words, node_cpu = [], [], [], [], []
        for n in range(warmup_commands + 1, number + 1):
            if n in got:
                t, status, n_phrases, n_words, cpu_end = got[n]
                statuses.append(status)
                if status == GroundedResponse.STATUS_OK:
                    latencies.append((t - sent[n]) * 1e3)
                    phrases.append(n_phrases)
                    words.append(n_words)
                    if cpu_end is not None and sent_cpu.get(n) is not None:
                        node_cpu.append(cpu_end - sent_cpu[n])
        measured = number - warmup_commands
        third = max(1, len(latencies) // 3)
        rss_values = [r for _, r in rss[warmup_commands:]]
        times = [t for t, _ in rss[warmup_commands:]]
        slope = float(np.polyfit(times, rss_values, 1)[0]) * 60 if len(rss_values) > 2 else None
        stats = p50_p99(latencies)
        cpu_stats = p50_p99(node_cpu)
        result = {
            "duration_s": duration_s,
            "warmup_commands": warmup_commands,
            "camera_hz_target": camera_hz,
            "camera_hz_sent": frames / elapsed if elapsed else None,
            "commands": measured,
            "responses": len(statuses),
            "ok": sum(1 for s in statuses if s == GroundedResponse.STATUS_OK),
            "rejected_busy": sum(1 for s in statuses if s == GroundedResponse.STATUS_REJECTED_BUSY),
            "other_status": sum(1 for s in statuses if s not in (
                GroundedResponse.STATUS_OK, GroundedResponse.STATUS_REJECTED_BUSY)),
            "missing": measured - len(statuses),
            "latency_ms": {**stats, "min": min(latencies) if latencies else None,
                           "max": max(latencies) if latencies else None},
            "p99_over_p50": (stats["p99"] / stats["p50"]) if latencies else None,
            "latency_first_third_median_ms": median(latencies[:third]),
            "latency_last_third_median_ms": median(latencies[-third:]),
            "max_requests_waiting": max(outstanding[warmup_commands:], default=0),
            "rss_mb_start": rss_values[0] if rss_values else None,
            "rss_mb_end": rss_values[-1] if rss_values else None,
            "rss_growth_mb": (rss_values[-1] - rss_values[0]) if rss_values else None,
            "rss_slope_mb_per_min": slope,
            "node_cpu_ms_per_request": cpu_stats,
            "node_cpu_p99_over_p50": (cpu_stats["p99"] / cpu_stats["p50"])
            if node_cpu and cpu_stats["p50"] else None,
            "load_avg_1min": {"min": min(load[warmup_commands:], default=None),
                              "max": max(load[warmup_commands:], default=None)},
            "latencies_ms": [round(x, 1) for x in latencies],
            "rss_growth_second_half_mb": (rss_values[-1] - rss_values[len(rss_values) // 2])
            if len(rss_values) > 1 else None,
            "phrases_per_response": median(phrases),
            "phrases_per_response_range": [min(phrases, default=None),
                                           max(phrases, default=None)],
            "words_per_response_range": [min(words, default=None), max(words, default=None)],
            "words_per_response": median(words),
        }
    finally:
        stop.set()
        executor.shutdown()
        node.destroy_node()
        output = stop_node(proc)
        if not result:
            log(f"stream: node output: {output[-2000:]}")
    return result


def cpu_ms(pid: int) -> float | None:
    """utime + stime of a process, in ms (/proc/<pid>/stat, clock ticks)."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
