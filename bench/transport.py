"""Measurement 4: mask transport, RLE in a GroundedResponse vs one mono8 Image per phrase.

Bytes on the wire are `rclpy.serialization.serialize_message` lengths. Latency is measured
between two processes: this one publishes, a subscriber subprocess (`python -m bench.transport
--peer`) records when each message arrived. Both read CLOCK_MONOTONIC (system-wide on Linux),
so one-way latency is receive time minus the send time carried in the header stamp. A response
counts as delivered when its last piece arrived: the RLE GroundedResponse, or for the image
variant the mask-less GroundedResponse plus all its Images. The two variants alternate.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, blob_masks, log, median, p50_p99, subprocess_env, wait_until

RLE_TOPIC = "/bench/transport/rle"
IMAGE_RESPONSE_TOPIC = "/bench/transport/response_no_masks"
IMAGE_TOPIC = "/bench/transport/masks"
BREAKDOWN_RESPONSE_TOPIC = "/bench/breakdown/response"
BREAKDOWN_OVERLAY_TOPIC = "/bench/breakdown/overlay"
CONTROL_TOPIC = "/bench/control"
ACK_TOPIC = "/bench/transport/ack"
DONE_TOPIC = "/bench/done"


# -- messages --------------------------------------------------------------------------------


def sample_result(masks: list[np.ndarray], text: str | None = None):
    """A GroundingResult with one phrase per mask (what the node turns into a response)."""
    from ros_ground.results import GroundedPhrase, GroundingResult

    words = ["the red mug", "the tray", "a blue cube", "the yellow duck", "a bowl", "the bottle",
             "a green block", "the teddy bear", "a plate", "the lego bricks"]
    phrases, parts, pos = [], [], 0
    for i, mask in enumerate(masks):
        word = words[i % len(words)]
        phrases.append(GroundedPhrase(text=word, char_start=pos, char_end=pos + len(word),
                                      score=0.9, mask=mask, point=(10.0 * i, 5.0 * i),
                                      entity_ids=[i]))
        parts.append(word)
        pos += len(word) + 2
    return GroundingResult(text=text or ", ".join(parts) + ".", phrases=phrases, model="bench",
                           image_size=masks[0].shape, timing_ms={"generation": 1.0,
                                                                 "grounding": 1.0, "total": 2.0})


def rle_response(result, stamp_ns: int = 0, request_id: str = "0"):
    from std_msgs.msg import Header

    from ros_ground.nodes.conversions import result_to_msg

    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return result_to_msg(result, header, request_id, "Describe the scene.")


def image_variant(result, stamp_ns: int = 0, request_id: str = "0"):
    """(mask-less GroundedResponse, [mono8 Image per phrase]): masks travel as images."""
    from sensor_msgs.msg import Image

    msg = rle_response(result, stamp_ns, request_id)
    for p in msg.phrases:
        p.mask.counts = []  # size kept, runs dropped: the mask is in the image
    images = []
    for i, phrase in enumerate(result.phrases):
        mask = np.ascontiguousarray(phrase.mask, dtype=np.uint8) * 255
        img = Image(height=mask.shape[0], width=mask.shape[1], encoding="mono8", is_bigendian=0,
                    step=mask.shape[1])
        img.data = mask.tobytes()
        img.header.stamp = msg.header.stamp
        img.header.frame_id = f"{request_id}:{i}:{len(result.phrases)}"
        images.append(img)
    return msg, images


def wire_sizes(masks: list[np.ndarray]) -> dict:
    from rclpy.serialization import serialize_message

    result = sample_result(masks)
    rle = len(serialize_message(rle_response(result)))
    response, images = image_variant(result)
    response_bytes = len(serialize_message(response))
    image_bytes = sum(len(serialize_message(img)) for img in images)
    h, w = masks[0].shape
    return {
        "frame": [int(h), int(w)],
        "phrases": len(masks),
        "coverage_pct": [round(100.0 * float(m.mean()), 2) for m in masks],
        "rle_message_bytes": rle,
        "image_variant_bytes": response_bytes + image_bytes,
        "image_variant_response_bytes": response_bytes,
        "image_variant_images_bytes": image_bytes,
        "rle_mask_bytes": rle - response_bytes,
        "rle_size_ratio": (response_bytes + image_bytes) / rle,
        "rle_size_ratio_masks_only": image_bytes / max(1, rle - response_bytes),
        "rle_runs": [int(len(p.mask.counts)) for p in rle_response(result).phrases],
    }


# -- codec -------------------------------------------------------------------------------------


def codec_timing(masks: list[np.ndarray], reps: int = 50) -> dict:
    """ms to encode + decode all `masks` with ros_ground.rle (and via MaskRLE messages).

    Headline: the thread's CPU time (`time.thread_time`), which excludes the time other
    processes held the core; wall-clock medians are reported beside it.
    """
    from ros_ground.nodes.conversions import mask_to_msg, msg_to_mask
    from ros_ground.rle import counts_to_mask, mask_to_counts

    def clocks():
        return time.perf_counter(), time.thread_time()

    enc, dec, enc_cpu, dec_cpu, msg_rt = [], [], [], [], []
    decoded = back = []
    for _ in range(max(1, reps)):
        w0, c0 = clocks()
        counts = [mask_to_counts(m) for m in masks]
        w1, c1 = clocks()
        decoded = [counts_to_mask(m.shape[0], m.shape[1], c) for m, c in zip(masks, counts)]
        w2, c2 = clocks()
        msgs = [mask_to_msg(m) for m in masks]
        back = [msg_to_mask(x) for x in msgs]
        w3, c3 = clocks()
        enc.append((w1 - w0) * 1e3)
        dec.append((w2 - w1) * 1e3)
        enc_cpu.append((c1 - c0) * 1e3)
        dec_cpu.append((c2 - c1) * 1e3)
        msg_rt.append((w3 - w2) * 1e3)
    for result in (decoded, back):
        assert all(np.array_equal(a, b) for a, b in zip(masks, result))
    total = [a + b for a, b in zip(enc, dec)]
    total_cpu = [a + b for a, b in zip(enc_cpu, dec_cpu)]
    return {"masks": len(masks), "reps": len(total), "clock": "thread CPU time",
            "encode_ms": median(enc_cpu), "decode_ms": median(dec_cpu),
            "encode_decode_ms": median(total_cpu),
            "encode_decode_p99_ms": float(np.percentile(total_cpu, 99)),
            "encode_decode_wall_ms": median(total),
            "encode_decode_wall_p99_ms": float(np.percentile(total, 99)),
            "via_messages_ms": median(msg_rt)}


# -- cross-process latency -----------------------------------------------------------------------


class Peer:
    """The subscriber subprocess; also subscribes to the breakdown topics (for a real reader)."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.transport", "--peer"], cwd=ROOT, env=subprocess_env(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "READY":
            rest = self.proc.stdout.read() if self.proc.poll() is not None else ""
            raise RuntimeError(f"transport peer did not start: {line!r} {rest[-2000:]}")

    def dump(self, node, path: Path, timeout: float = 30.0) -> dict:
        from std_msgs.msg import String

        from ros_ground.nodes.common import RELIABLE

        control = node.create_publisher(String, CONTROL_TOPIC, RELIABLE)
        wait_until(lambda: control.get_subscription_count() > 0, 10)
        control.publish(String(data=str(path)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not path.exists():
            time.sleep(0.05)
        time.sleep(0.1)
        node.destroy_publisher(control)
        return json.loads(path.read_text())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure_latency(node, peer: Peer, masks: list[np.ndarray], count: int, gap_s: float,
                    tmpdir: Path) -> dict:
    """One response in flight at a time: publish, wait for the peer's ack that the whole
    response arrived (or 2 s), pause `gap_s`, publish the other variant. The latency itself is
    the peer's receive clock minus the send stamp; the ack only paces the sender, so neither
    variant is measured behind a queue of its own earlier messages."""
    import rclpy
    from ros_ground_msgs.msg import GroundedResponse
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from ros_ground.nodes.common import RELIABLE

    result = sample_result(masks)
    rle_pub = node.create_publisher(GroundedResponse, RLE_TOPIC, RELIABLE)
    resp_pub = node.create_publisher(GroundedResponse, IMAGE_RESPONSE_TOPIC, RELIABLE)
    img_pub = node.create_publisher(Image, IMAGE_TOPIC, RELIABLE)
    acks: set[str] = set()
    ack_sub = node.create_subscription(String, ACK_TOPIC, lambda m: acks.add(m.data), RELIABLE)

    def spin_until(predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            rclpy.spin_once(node, timeout_sec=0.005)
        return predicate()

    if not spin_until(lambda: all(p.get_subscription_count() for p in (rle_pub, resp_pub,
                                                                        img_pub))
                      and ack_sub.get_publisher_count(), 20):
        raise RuntimeError("transport peer's subscriptions were not discovered")
    spin_until(lambda: False, 0.3)
    warmup = 5
    sent = {"rle": {}, "image": {}}
    build_ms = {"rle": [], "image": []}
    timeouts = 0
    for i in range(warmup + count):
        request_id = str(i)
        for variant in (("rle", "image") if i % 2 == 0 else ("image", "rle")):
            # the messages are built before the clock starts: this is transport only
            t0 = time.perf_counter()
            if variant == "rle":
                msg = rle_response(result, 0, request_id)
            else:
                msg, images = image_variant(result, 0, request_id)
            build_ms[variant].append((time.perf_counter() - t0) * 1e3)
            stamp = time.monotonic_ns()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            if variant == "rle":
                rle_pub.publish(msg)
            else:
                resp_pub.publish(msg)
                for img in images:
                    img.header.stamp = msg.header.stamp
                    img_pub.publish(img)
            if i >= warmup:
                sent[variant][request_id] = stamp
            done = f"{variant}:{request_id}"
            if not spin_until(lambda done=done: done in acks, 2.0):
                timeouts += 1
            spin_until(lambda: False, gap_s)
    received = peer.dump(node, tmpdir / f"transport_{time.monotonic_ns()}.json")
    node.destroy_subscription(ack_sub)
    for pub in (rle_pub, resp_pub, img_pub):
        node.destroy_publisher(pub)
    out = {}
    for variant in ("rle", "image"):
        arrivals = received[variant]
        latencies = []
        for request_id, stamp in sent[variant].items():
            got = arrivals.get(request_id)
            if got is None or not got["complete"]:
                continue
            latencies.append((got["last_ns"] - stamp) / 1e6)
        out[variant] = {**p50_p99(latencies), "lost": len(sent[variant]) - len(latencies),
                        "mean": float(np.mean(latencies)) if latencies else None}
    out["messages_per_variant"] = count
    out["gap_s"] = gap_s
    out["ack_timeouts"] = timeouts
    out["build_ms"] = {k: median(v) for k, v in build_ms.items()}
    return out


def run_transport(node, peer: Peer, quick: bool, tmpdir: Path) -> dict:
    masks = blob_masks(10, 480, 640, seed=0)
    log("transport: wire sizes and codec timing")
    sizes = wire_sizes(masks)
    codec = codec_timing(masks, reps=20 if quick else 200)
    count = 30 if quick else 250
    log(f"transport: cross-process latency, {count} responses per variant")
    latency = measure_latency(node, peer, masks, count, gap_s=0.01, tmpdir=tmpdir)
    return {"sizes": sizes, "codec": codec, "latency_ms": latency}


# -- the peer process ------------------------------------------------------------------------------


def peer_main() -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from ros_ground_msgs.msg import GroundedResponse
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from ros_ground.nodes.common import RELIABLE

    rclpy.init()
    node = rclpy.create_node("bench_transport_peer")
    arrivals = {"rle": {}, "image": {}}
    counts = {"breakdown_response": 0, "breakdown_overlay": 0}
    stop = []

    ack = node.create_publisher(String, ACK_TOPIC, RELIABLE)

    def record(variant: str, request_id: str, expected: int | None = None):
        now = time.monotonic_ns()
        entry = arrivals[variant].setdefault(
            request_id, {"pieces": 0, "last_ns": 0, "expected": None, "complete": False})
        entry["pieces"] += 1
        entry["last_ns"] = max(entry["last_ns"], now)
        if expected is not None:
            entry["expected"] = expected
        if entry["expected"] is not None and entry["pieces"] >= entry["expected"] \
                and not entry["complete"]:
            entry["complete"] = True
            ack.publish(String(data=f"{variant}:{request_id}"))

    def on_image(msg):
        request_id, _index, total = msg.header.frame_id.split(":")
        record("image", request_id, 1 + int(total))

    def on_control(msg):
        Path(msg.data).write_text(json.dumps({**arrivals, "counts": counts}))
        for v in arrivals.values():
            v.clear()

    def count(name):
        def callback(_msg):
            counts[name] += 1
        return callback

    node.create_subscription(GroundedResponse, RLE_TOPIC,
                             lambda m: record("rle", m.request_id, 1), RELIABLE)
    node.create_subscription(GroundedResponse, IMAGE_RESPONSE_TOPIC,
                             lambda m: record("image", m.request_id), RELIABLE)
    node.create_subscription(Image, IMAGE_TOPIC, on_image, RELIABLE)
    node.create_subscription(GroundedResponse, BREAKDOWN_RESPONSE_TOPIC,
                             count("breakdown_response"), RELIABLE)
    node.create_subscription(Image, BREAKDOWN_OVERLAY_TOPIC, count("breakdown_overlay"), RELIABLE)
    node.create_subscription(String, CONTROL_TOPIC, on_control, RELIABLE)
    node.create_subscription(String, DONE_TOPIC, lambda m: stop.append(1), RELIABLE)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    print("READY", flush=True)
    try:
        while not stop:
            executor.spin_once(timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer", action="store_true")
    args = parser.parse_args(argv)
    if args.peer:
        return peer_main()
    masks = blob_masks()
    print(json.dumps({"sizes": wire_sizes(masks), "codec": codec_timing(masks)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
