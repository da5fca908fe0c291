"""`ros-ground demo` (`make demo`): the composed graph on the embedded models, explained as it runs.

Starts `ground_container --sim` (simulated camera + mask proposals + grounding, the graph that
launch/sim.launch.py starts) as its own process on a private DDS domain, asks it to describe the
scene and to find one object, prints every grounded phrase, writes overlays to the output
folder, and scores the answers against the simulator's ground truth.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import rclpy
from ros_ground_msgs.msg import EntityProposals, SimGroundTruth
from sensor_msgs.msg import Image

from ros_ground.nodes.ask import STATUS_NAMES, ask
from ros_ground.nodes.common import RELIABLE
from ros_ground.nodes.conversions import image_msg_to_rgb, msg_to_mask, msg_to_phrase, stamp_to_ns

NAMESPACE = "/demo"
MODE_WORDS = {  # GroundedResponse.mode, for a reader who has not seen the method
    "entities": "chosen among the grounded frame's entity mask proposals (GROUNDHOG-style)",
    "point": "from SAM prompted at each phrase's attention peak (no proposals for a recent frame yet)",
}


def params_file() -> Path:
    """config/sim.yaml of this checkout, else of the installed package."""
    local = Path(__file__).resolve().parents[2] / "config" / "sim.yaml"
    if local.is_file():
        return local
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("ros_ground")) / "config" / "sim.yaml"


def _graph_command(model: str | None, sam_model: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "ros_ground.nodes.container", "--sim", "--ros-args",
           "--params-file", str(params_file()), "-r", f"__ns:={NAMESPACE}",
           "-r", "image:=image_raw"]
    if model:
        cmd += ["-p", f"model:={model}"]
    if sam_model:
        cmd += ["-p", f"sam_model:={sam_model}"]
    return cmd


PROPOSAL_WAIT_S = 60.0


def run_demo(args) -> int:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
    os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
    print(f"[demo] starting the graph (sim camera + proposals + grounding) with {params_file()}")
    log_path = out_dir / "graph.log"
    log = open(log_path, "w")
    graph = subprocess.Popen(_graph_command(args.model, args.sam_model), env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("ros_ground_demo", namespace=NAMESPACE)
    truths: list[SimGroundTruth] = []
    overlays: list[Image] = []
    node.create_subscription(SimGroundTruth, "ground_truth", truths.append, RELIABLE)
    node.create_subscription(Image, "overlay", overlays.append, RELIABLE)
    proposals: list[EntityProposals] = []
    node.create_subscription(EntityProposals, "proposals", proposals.append, RELIABLE)
    started = time.monotonic()
    try:
        if not _spin_until(node, lambda: truths, 120):
            print(f"[demo] no ground truth from the sim camera; see {log_path}", file=sys.stderr)
            return 1
        truth = truths[-1]
        print(f"[demo] the simulated camera sees: {truth.description}")
        # A running graph has entity masks for a recent frame; right after start it has none, and
        # `auto` would fall back to point prompts for the first command.
        print("[demo] waiting for the proposal node's first entity masks ...", end="", flush=True)
        waited = time.monotonic()
        if _spin_until(node, lambda: proposals, PROPOSAL_WAIT_S):
            print(f" {len(proposals[-1].entities)} proposals after "
                  f"{time.monotonic() - waited:.1f} s")
        else:
            print(f" none after {PROPOSAL_WAIT_S:.0f} s; grounding without them")
        prompts = ["Describe the scene."]
        if truth.names:
            prompts.append(f"Where is the {truth.names[0]}?")
        results = []
        for prompt in prompts:
            print(f"\n[demo] asking: {prompt!r}\n  answer: ", end="", flush=True)
            shown = [0]

            def stream(feedback, shown=shown):
                text = feedback.feedback.partial_text
                print(text[shown[0]:], end="", flush=True)
                shown[0] = len(text)

            response = ask(node, prompt, NAMESPACE, timeout=240.0, on_feedback=stream)
            print()
            results.append(response)
            _print_phrases(response)
            overlay = _overlay_for(node, overlays, response)
            if overlay is not None:
                from ros_ground.overlay import save_png

                path = out_dir / f"{len(results)}_{_slug(prompt)}.png"
                save_png(path, overlay)
                print(f"  overlay written to {path}")
        _print_metrics(results, truths)
        print(f"\n[demo] done in {time.monotonic() - started:.0f} s; graph log: {log_path}")
        return 0 if all(r.status == 0 for r in results) else 1
    except TimeoutError as exc:
        print(f"\n[demo] {exc}; see {log_path}", file=sys.stderr)
        return 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        graph.terminate()
        try:
            graph.wait(timeout=20)
        except subprocess.TimeoutExpired:
            graph.kill()
        log.close()


def _spin_until(node, predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        rclpy.spin_once(node, timeout_sec=0.05)
    return bool(predicate())


def _overlay_for(node, overlays, response):
    stamp = stamp_to_ns(response.header.stamp)
    match = lambda: [m for m in overlays if stamp_to_ns(m.header.stamp) == stamp]  # noqa: E731
    if not _spin_until(node, match, 5.0):
        return None
    return image_msg_to_rgb(match()[-1])


def _print_phrases(response) -> None:
    status = STATUS_NAMES.get(response.status, str(response.status))
    if response.status != 0:
        print(f"  [{status}] {response.error}")
        return
    how = MODE_WORDS.get(response.mode, response.mode)
    print(f"  {len(response.phrases)} grounded phrase(s), {response.total_ms:.0f} ms "
          f"(generation {response.generation_ms:.0f} ms, grounding {response.grounding_ms:.0f} ms)"
          + (f"; masks {how}" if how else "") + ":")
    for p in response.phrases:
        area = sum(p.mask.counts[1::2])
        ids = list(p.entity_ids)
        ents = f", proposal {ids[0]}" if len(ids) == 1 else (f", merged proposals {ids}" if ids else "")
        print(f"   - {p.text!r} chars {p.char_start}-{p.char_end}: mask {area} px, box "
              f"x={p.bbox.x_offset} y={p.bbox.y_offset} w={p.bbox.width} h={p.bbox.height}, "
              f"score {p.score:.2f}{ents}")


def _print_metrics(responses, truths) -> None:
    """GCG metrics of the answers against the ground truth of the frames they grounded."""
    from ros_ground.metrics import GTPhrase, PredPhrase, TextSimilarity, aggregate, evaluate_image

    by_stamp = {stamp_to_ns(t.header.stamp): t for t in truths}
    sim = TextSimilarity()
    records = []
    for response in responses:
        truth = by_stamp.get(stamp_to_ns(response.header.stamp)) or truths[-1]
        gt = [GTPhrase(name, msg_to_mask(m)) for name, m in zip(truth.names, truth.masks)]
        if response.prompt.startswith("Where is") and gt:
            gt = gt[:1]
        preds = [PredPhrase(p.text, phrase.mask, phrase.point)
                 for p, phrase in ((p, msg_to_phrase(p)) for p in response.phrases)]
        records.append(evaluate_image(preds, gt, sim))
    report = aggregate(records)
    print(f"\n[demo] scored against the simulator's ground truth ({len(records)} answers, "
          f"{report.phrases} ground-truth objects):")
    print(f"  grounding mask recall {report.mask_recall:.2f}   mIoU {report.miou:.2f}   "
          f"AP50 {report.ap50:.2f}   point accuracy {report.point_accuracy:.2f}")
    print("  (for many scenes and a random-point baseline: ros-ground eval --scenes 200 --seed 0)")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")[:40]
