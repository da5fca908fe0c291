"""Several cameras, one model: a grounding node with `cameras: [cam0, cam1, cam2]` in its own
process, fed by three simulated cameras and one operator per camera.

The node runs `python -m ros_ground.nodes.grounding_node --ros-args --params-file
config/sim.yaml -p cameras:=[cam0, cam1, cam2]` (the embedded models, on the CPU). This process
publishes a 320x240 rgb8 frame per camera at `--rate` Hz (new stamps, best effort) and one
`std_msgs/String` command per camera every `--period` s, the cameras' commands spread evenly
over the period; it records every GroundedResponse on each camera's `response`. Latency is
command publish -> response receipt (both here; each command's prompt carries its number, so
an answer is matched to its command whatever the order); the node's RSS is sampled every
second.

    python -m bench.cameras [--seconds 120] [--rate 10] [--period 1] [--set NAME:=VALUE] [--json]

Every command must be answered (OK, or REJECTED_BUSY when the model cannot keep up: a CPU
that takes longer per request than the period / cameras), no camera may be starved (each
camera's share of OK answers close to a third), and RSS should stay flat. Not part of `make
bench`: its table and reading go into bench/hand_run/8_cameras.md, which every render of
RESULTS.md places as section 8.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

import numpy as np

from bench.common import (
    ROOT,
    log,
    machine_info,
    machine_line,
    p50_p99,
    private_ros_domain,
    rss_mb,
    spin_until_set,
    subprocess_env,
    tabletop_image,
    wait_until,
)
from bench.stream import stop_node

CAMERAS = ("cam0", "cam1", "cam2")
NAMESPACE = "/bench_cameras"
PROMPT = "Describe the scene."


def start_node(extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ros_ground.nodes.grounding_node", "--ros-args",
           "--params-file", str(ROOT / "config" / "sim.yaml"), "-r", f"__ns:={NAMESPACE}",
           "-p", f"cameras:=[{', '.join(CAMERAS)}]", "--log-level", "warn"]
    for value in extra:
        cmd += ["-p", value]
    return subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run(seconds: float, rate: float, period: float, extra: list[str]) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from ros_ground_msgs.msg import GroundedResponse
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from ros_ground.nodes.common import RELIABLE
    from ros_ground.nodes.conversions import rgb_to_image_msg

    rclpy.init()
    proc = start_node(extra)
    node = rclpy.create_node("bench_cameras_client", namespace=NAMESPACE)
    images = {c: node.create_publisher(Image, f"{c}/image", qos_profile_sensor_data)
              for c in CAMERAS}
    commands = {c: node.create_publisher(String, f"{c}/command", RELIABLE) for c in CAMERAS}
    received: dict[str, list[tuple[float, int, str, str]]] = {c: [] for c in CAMERAS}
    lock = threading.Lock()

    def on_response(camera: str, msg: GroundedResponse) -> None:
        with lock:
            received[camera].append((time.perf_counter(), int(msg.status), msg.prompt,
                                     msg.error))

    for c in CAMERAS:
        node.create_subscription(GroundedResponse, f"{c}/response",
                                 lambda m, c=c: on_response(c, m), RELIABLE)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()
    threading.Thread(target=lambda: spin_until_set(executor, stop), daemon=True).start()
    frames = {c: rgb_to_image_msg(tabletop_image(240, 320, seed=i)) for i, c in enumerate(CAMERAS)}
    frames_sent = [0]

    def cameras() -> None:
        next_t = time.perf_counter()
        while not stop.is_set():
            stamp = node.get_clock().now().to_msg()
            for c in CAMERAS:
                frames[c].header.stamp = stamp
                frames[c].header.frame_id = c
                images[c].publish(frames[c])
            frames_sent[0] += 1
            next_t += 1.0 / rate
            time.sleep(max(0.0, next_t - time.perf_counter()))

    sent: dict[str, dict[str, float]] = {c: {} for c in CAMERAS}  # prompt -> time sent
    rss: list[tuple[float, float]] = []
    try:
        log("cameras: waiting for the grounding node to load its models and activate")
        if not wait_until(lambda: all(p.get_subscription_count() for p in commands.values())
                          or proc.poll() is not None, 180, poll=0.05):
            raise RuntimeError("grounding node did not activate in 180 s")
        if proc.poll() is not None:
            raise RuntimeError(f"grounding node exited: {stop_node(proc)[-2000:]}")
        threading.Thread(target=cameras, daemon=True).start()
        time.sleep(2.0)
        for c in CAMERAS:  # warm-up, not measured
            commands[c].publish(String(data=PROMPT))
        wait_until(lambda: all(received[c] for c in CAMERAS), 60, poll=0.05)
        with lock:
            for c in CAMERAS:
                received[c].clear()
        log(f"cameras: {seconds:.0f} s, {len(CAMERAS)} cameras at {rate:g} Hz, one command per "
            f"camera every {period:g} s")
        start, frames_at_start = time.perf_counter(), frames_sent[0]
        rounds = int(seconds / period)
        for k in range(rounds):
            for i, c in enumerate(CAMERAS):
                target = start + (k + i / len(CAMERAS)) * period
                time.sleep(max(0.0, target - time.perf_counter()))
                prompt = f"{PROMPT} ({k})"
                sent[c][prompt] = time.perf_counter()
                commands[c].publish(String(data=prompt))
            rss.append((time.perf_counter() - start, rss_mb(proc.pid) or float("nan")))
        wait_until(lambda: all(len(received[c]) >= len(sent[c]) for c in CAMERAS), 120, poll=0.05)
        elapsed = time.perf_counter() - start
        frames_counted = frames_sent[0] - frames_at_start
    finally:
        stop.set()
        output = stop_node(proc)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    per_camera = {}
    for c in CAMERAS:
        got = [r for r in received[c] if r[2] in sent[c]]
        latencies = [(t - sent[c][prompt]) * 1e3 for t, status, prompt, _ in got
                     if status == GroundedResponse.STATUS_OK]
        per_camera[c] = {
            "commands": len(sent[c]), "responses": len(got),
            "ok": sum(1 for r in got if r[1] == GroundedResponse.STATUS_OK),
            "rejected_busy": sum(1 for r in got if r[1] == GroundedResponse.STATUS_REJECTED_BUSY),
            "other": sum(1 for r in got if r[1] not in (
                GroundedResponse.STATUS_OK, GroundedResponse.STATUS_REJECTED_BUSY)),
            "other_errors": sorted({r[3] for r in got if r[1] not in (
                GroundedResponse.STATUS_OK, GroundedResponse.STATUS_REJECTED_BUSY)}),
            "latency_ms": p50_p99(latencies),
        }
    values = [r for _, r in rss]
    times = [t for t, _ in rss]
    return {
        "seconds": seconds, "rate_hz": rate, "command_period_s": period, "set": extra,
        "camera_hz_sent": frames_counted / elapsed if elapsed else None,
        "cameras": per_camera,
        "rss_mb_start": values[0] if values else None,
        "rss_mb_end": values[-1] if values else None,
        "rss_slope_mb_per_min": float(np.polyfit(times, values, 1)[0]) * 60
        if len(values) > 2 else None,
        "node_output_tail": output[-1000:],
    }


def markdown(result: dict, info: dict) -> str:
    lines = [f"Machine: {machine_line(info)}; {time.strftime('%Y-%m-%d %H:%M %Z')}. "
             f"{len(CAMERAS)} cameras at {result['rate_hz']:g} Hz (sent "
             f"{result['camera_hz_sent']:.1f} Hz each), one command per camera every "
             f"{result['command_period_s']:g} s for {result['seconds']:g} s "
             f"(`python -m bench.cameras{''.join(' --set ' + s for s in result['set'])}`).", "",
             "| camera | commands | responses | OK | rejected busy | other | p50 ms | p99 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for c, r in result["cameras"].items():
        lat = r["latency_ms"]
        p50 = f"{lat['p50']:.0f}" if lat.get("p50") is not None else "-"
        p99 = f"{lat['p99']:.0f}" if lat.get("p99") is not None else "-"
        lines.append(f"| {c} | {r['commands']} | {r['responses']} | {r['ok']} | "
                     f"{r['rejected_busy']} | {r['other']} | {p50} | {p99} |")
    slope = result["rss_slope_mb_per_min"]
    errors = sorted({e for r in result["cameras"].values() for e in r["other_errors"]})
    lines += [f"\nOther statuses' errors: {errors}" if errors else ""]
    lines += ["", f"Node RSS {result['rss_mb_start']:.1f} -> {result['rss_mb_end']:.1f} MB "
              f"(trend {slope:+.2f} MB/min)." if slope is not None else ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second per camera")
    parser.add_argument("--period", type=float, default=1.0, help="seconds between one camera's commands")
    parser.add_argument("--set", action="append", default=[], metavar="NAME:=VALUE",
                        help="a grounding node parameter (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    private_ros_domain()
    result = run(args.seconds, args.rate, args.period, args.set)
    print(json.dumps(result, indent=1) if args.json else markdown(result, machine_info()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
