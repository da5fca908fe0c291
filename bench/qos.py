"""Large camera frames across two processes: frames sent vs received per subscriber QoS.

A publisher process sends rgb8 frames (1920x1080 and 2592x1944 by default) at 2 Hz with a
RELIABLE QoS (keep last 10), as camera drivers do by default; a subscriber process counts what
arrives with the `image_qos` profiles of ros_ground.nodes.common (sensor_data = best effort,
keep last 5; reliable = keep last 1). Each case runs with this machine's default RMW and
transport, and again with FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA (Fast DDS shared memory + TCP).

    python -m bench.qos [--seconds 20] [--rate 2] [--json]

The header's frame_id carries the frame's index, so a frame counts once however it arrives.
Not part of `make bench`: its table and reading go into bench/hand_run/6_qos.md, which every
render of RESULTS.md places as section 6.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time

import numpy as np

from bench.common import log, machine_info, machine_line, private_ros_domain, subprocess_env

SIZES = ((1920, 1080), (2592, 1944))
QOS = ("sensor_data", "reliable")
TRANSPORTS = ("default", "LARGE_DATA")
TOPIC = "/bench/qos/image"
SETTLE_S = 3.0  # after the last frame, for late deliveries


def _publish(width: int, height: int, rate: float, seconds: float) -> dict:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bench_qos_publisher")
    pub = node.create_publisher(Image, TOPIC, QoSProfile(depth=10,
                                                         reliability=ReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 30
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    time.sleep(1.0)  # discovery finishes on both sides
    frame = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    msg = Image(height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3)
    msg.data = frame.tobytes()
    count = int(round(seconds * rate))
    start = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
        msg.header.frame_id = str(i)
        pub.publish(msg)
    time.sleep(SETTLE_S)
    node.destroy_node()
    rclpy.shutdown()
    return {"sent": count}


def _subscribe(qos_name: str, seconds: float) -> dict:
    """Count distinct frames until `seconds` pass or SIGTERM (the publisher is done)."""
    import rclpy
    from sensor_msgs.msg import Image

    from ros_ground.nodes.common import qos_by_name

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("bench_qos_subscriber")
    seen: set[str] = set()
    node.create_subscription(Image, TOPIC, lambda m: seen.add(m.header.frame_id),
                             qos_by_name(qos_name))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop:
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()
    return {"received": len(seen)}


def run_case(width: int, height: int, qos: str, transport: str, rate: float,
             seconds: float) -> dict:
    env = subprocess_env()
    env.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    if transport != "default":
        env["FASTDDS_BUILTIN_TRANSPORTS"] = transport
    cmd = [sys.executable, "-m", "bench.qos", "--role"]
    sub = subprocess.Popen([*cmd, "sub", "--qos", qos, "--seconds", str(seconds + 45)],
                           env=env, stdout=subprocess.PIPE, text=True)
    pub = subprocess.Popen([*cmd, "pub", "--size", f"{width}x{height}", "--rate", str(rate),
                            "--seconds", str(seconds)], env=env, stdout=subprocess.PIPE, text=True)
    sent = json.loads(pub.communicate(timeout=seconds + 120)[0].strip().splitlines()[-1])["sent"]
    sub.terminate()  # SIGTERM: the subscriber reports what it has on the way out
    received = json.loads(sub.communicate(timeout=60)[0].strip().splitlines()[-1])["received"]
    return {"width": width, "height": height, "qos": qos, "transport": transport,
            "sent": sent, "received": received}


def markdown(results: list[dict], info: dict, rate: float, seconds: float) -> str:
    lines = [f"Machine: {machine_line(info)}; RMW: {info.get('rmw', 'rmw_fastrtps_cpp (default)')}; "
             f"{time.strftime('%Y-%m-%d %H:%M %Z')}. Publisher RELIABLE (keep last 10) at "
             f"{rate:g} Hz for {seconds:g} s per case, subscriber in another process "
             "(`python -m bench.qos`).", "",
             "| frame | subscriber image_qos | transport | sent | received | delivered |",
             "|---|---|---|---|---|---|"]
    for r in results:
        share = r["received"] / r["sent"] if r["sent"] else 0.0
        lines.append(f"| {r['width']}x{r['height']} rgb8 | {r['qos']} | {r['transport']} | "
                     f"{r['sent']} | {r['received']} | {share:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("pub", "sub"), help=argparse.SUPPRESS)
    parser.add_argument("--size", default="1920x1080", help=argparse.SUPPRESS)
    parser.add_argument("--qos", choices=QOS, default="sensor_data", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=20.0, help="per case (default 20)")
    parser.add_argument("--rate", type=float, default=2.0, help="frames per second (default 2)")
    parser.add_argument("--transports", default=",".join(TRANSPORTS),
                        help="comma-separated: default and/or a FASTDDS_BUILTIN_TRANSPORTS value")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.role == "pub":
        width, height = (int(v) for v in args.size.split("x"))
        print(json.dumps(_publish(width, height, args.rate, args.seconds)))
        return 0
    if args.role == "sub":
        print(json.dumps(_subscribe(args.qos, args.seconds)))
        return 0
    private_ros_domain()
    results = []
    for transport in args.transports.split(","):
        for width, height in SIZES:
            for qos in QOS:
                result = run_case(width, height, qos, transport, args.rate, args.seconds)
                log(f"qos: {width}x{height} {qos:11s} {transport:10s} "
                    f"{result['received']}/{result['sent']}")
                results.append(result)
    if args.json:
        print(json.dumps(results))
    else:
        print(markdown(results, machine_info(), args.rate, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
