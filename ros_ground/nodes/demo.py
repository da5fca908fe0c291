"""`ros-ground demo` (`make demo`): the composed graph on the embedded models, explained as it runs.

Starts `ground_container --sim` (simulated camera + mask proposals + grounding, the graph that
launch/sim.launch.py starts) as its own process on a private DDS domain, asks it to describe the
scene, to find one object and to pick one up, prints each answer with its phrases in plain
words (for the pick-up command: which words of the command it acted on, that object's pixels
and its position in space beside the simulator's truth), draws each answer's own picture into
the output folder, and scores the answers against the simulator's ground truth.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from ros_ground_msgs.msg import EntityProposals, SimGroundTruth
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ros_ground.frames import KeptForProposals, Stamped
from ros_ground.image_codec import image_to_rgb
from ros_ground.image_files import save_png
from ros_ground.nodes.ask import INTENT_WORDS, ask, print_phrases, target_where
from ros_ground.nodes.common import RELIABLE, check_domain_id, spin_until
from ros_ground.nodes.conversions import msg_to_mask, msg_to_phrase, stamp_to_ns
from ros_ground.overlay import draw_overlay, with_target

NAMESPACE = "/demo"
CAVEAT = ("Note: the answers come from a small model trained in a tiny simulator; its wording is "
          "often wrong\n(names, colours, counts). The outlines in the pictures show what it "
          "actually pointed at.")
ZOOM = 2  # frames up to 400 px wide (the classic 320x240) drawn twice as large, for legible labels
FRAMES_KEPT = 150  # 30 s of the sim camera at 5 Hz (the frames proposals are for are kept longer)
OUTLINED_KEPT = 4


def params_file(name: str = "sim.yaml") -> Path:
    """config/`name` of this checkout, else of the installed package."""
    local = Path(__file__).resolve().parents[2] / "config" / name
    if local.is_file():
        return local
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("ros_ground")) / "config" / name


def _graph_command(model: str | None, sam_model: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "ros_ground.nodes.container", "--sim", "--ros-args",
           "--params-file", str(params_file()), "--params-file", str(params_file("demo.yaml")),
           "-r", f"__ns:={NAMESPACE}",
           "-r", "image:=image_raw",
           # three answers do not earn back the decode step's first compilation (~30-60 s here)
           "-p", 'compile:="off"']  # quoted: a bare off is YAML's false
    if model:
        cmd += ["-p", f"model:={model}"]
    if sam_model:
        cmd += ["-p", f"sam_model:={sam_model}"]
    return cmd


PROPOSAL_WAIT_S = 300.0  # config/demo.yaml: a proposal run takes 25-60 s on a 2-core CPU
FAILED = ("configure failed: ", "configure refused: ")  # ros_ground.nodes.lifecycle's errors


class GraphFailed(RuntimeError):
    """A node of the graph could not configure, or the graph's process ended."""


class GraphWatch:
    """Reads the graph's log as it grows, so a node that failed to configure (a model that does
    not load) ends the demo at once with its own error, not after minutes of waiting."""

    def __init__(self, process: subprocess.Popen, log_path: Path):
        self._process, self._log, self._offset = process, log_path, 0

    def failure(self) -> str | None:
        """The first configure error logged, or how the process ended; None while all is well."""
        with open(self._log, errors="replace") as log:
            log.seek(self._offset)
            for line in log:
                for marker in FAILED:
                    if marker in line:
                        node = line.split("]: ", 1)[0].rsplit("[", 1)[-1]
                        return f"{node}: {marker}{line.split(marker, 1)[1].strip()}"
            self._offset = log.tell()
        code = self._process.poll()
        return None if code is None else f"the graph's process ended with status {code}"

    def check(self) -> None:
        """Raises GraphFailed with `failure()`'s text when there is one."""
        why = self.failure()
        if why:
            raise GraphFailed(why)


class RecentFrames:
    """The camera's last `keep` frames by stamp, and those the proposal node outlines, to draw
    each answer on the frame it grounded (config/demo.yaml: the frame of a proposal run, which
    may be a minute old)."""

    def __init__(self, keep: int = FRAMES_KEPT):
        self._frames: OrderedDict[int, Image] = OrderedDict()
        self._outlined = KeptForProposals(OUTLINED_KEPT)
        self._keep = keep

    def add(self, msg: Image) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        self._frames[stamp] = msg
        self._outlined.arrived("", Stamped(stamp, msg), math.inf)  # kept however old
        while len(self._frames) > self._keep:
            self._frames.popitem(last=False)

    def outlined(self, header) -> None:
        """Keep the frame stamped like `header` (of proposals_started or EntityProposals) past
        the last `keep`, now or when it comes."""
        stamp = stamp_to_ns(header.stamp)
        here = [Stamped(stamp, self._frames[stamp])] if stamp in self._frames else []
        self._outlined.want("", stamp, 0, here)

    def nearest(self, stamp_ns: int) -> tuple[Image, int] | None:
        """The frame closest in time to `stamp_ns` and how far from it (ns); None before any."""
        frames = {**{f.stamp_ns: f.item for f in self._outlined.frames("")}, **self._frames}
        if not frames:
            return None
        key = min(frames, key=lambda k: abs(k - stamp_ns))
        return frames[key], abs(key - stamp_ns)


def target_picture(response, frame: Image, zoom: int = ZOOM) -> np.ndarray:
    """The frame with only the command's target drawn, strongly filled and labelled
    "target: ..." (the frame itself when the command has no target)."""
    target = with_target([], [msg_to_phrase(p) for p in response.prompt_phrases], response.target)
    return draw_overlay(image_to_rgb(frame), target, fill_alpha=0.4, zoom=zoom)


def answer_picture(response, frame: Image, zoom: int = ZOOM) -> np.ndarray:
    """The frame with this response's own phrases drawn on it and, when the prompt has one, its
    target labelled "target: ..." (RGB, `zoom` times the frame's size): "Where is the tray?"
    shows the tray the text says the question is about, which the answer may not name.

    Drawn here from the response's masks rather than taken from the node's `overlay` topic: two
    answers grounded on one frame share its stamp, so a stamp cannot tell their overlays apart.
    Raises ImageDecodeError for a malformed frame, ValueError for masks of another size.
    """
    phrases = with_target([msg_to_phrase(p) for p in response.phrases],
                          [msg_to_phrase(p) for p in response.prompt_phrases], response.target)
    return draw_overlay(image_to_rgb(frame), phrases, zoom=zoom)


def run_demo(args) -> int:
    from ros_ground.out_paths import check_output_folder

    check_output_folder(args.out, "--out")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
    # a simulated camera must not reach a robot's network, whatever its domain
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    domain = env["ROS_DOMAIN_ID"].strip()  # empty: rcl's default, 0
    if domain and not domain.isdigit():
        raise ValueError(f"ROS_DOMAIN_ID {domain!r} is not a whole number")
    check_domain_id(int(domain or 0))  # before the graph starts: it would die on it too
    for name in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        os.environ[name] = env[name]
    print(f"[demo] Starting the robot graph: simulated camera, object outlines (proposal node) and "
          f"grounding, with the settings in {params_file()} and {params_file('demo.yaml')}")
    log_path = out_dir / "graph.log"
    log = open(log_path, "w")
    graph = subprocess.Popen(_graph_command(args.model, args.sam_model), env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    # Ctrl-C (KeyboardInterrupt) and SIGTERM end the demo the same way: the graph is stopped
    # (it has its own process; a SIGTERM to the demo alone would otherwise leave it running)
    previous_sigterm = _sigterm_raises_keyboard_interrupt()
    node = None
    watch = GraphWatch(graph, log_path)
    try:
        scorer = _load_scorer()  # now, while the graph starts: loading it later would interrupt the answers
        # rclpy's handlers would shut the context down under a running spin (a second error)
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        node = rclpy.create_node("ros_ground_demo", namespace=NAMESPACE)
        truths: list[SimGroundTruth] = []
        frames = RecentFrames()
        node.create_subscription(SimGroundTruth, "ground_truth", truths.append, RELIABLE)
        node.create_subscription(Image, "image_raw", frames.add, qos_profile_sensor_data)
        proposals: list[EntityProposals] = []
        node.create_subscription(EntityProposals, "proposals",
                                 lambda m: (proposals.append(m), frames.outlined(m.header)), RELIABLE)
        node.create_subscription(Header, "proposals_started", frames.outlined, RELIABLE)
        started = time.monotonic()
        if not spin_until(node, lambda: truths, 120, watch.check):
            print(f"[demo] no ground truth from the sim camera; see {log_path}", file=sys.stderr)
            return 1
        truth = truths[-1]
        print(f"[demo] The simulated camera sees: {truth.description}")
        print(CAVEAT)
        # A running graph has object outlines for a recent frame; right after start it has none,
        # and `auto` would fall back to point prompts for the first question.
        print("[demo] Waiting for the proposal node to outline the objects ...", end="", flush=True)
        waited = time.monotonic()
        # outlines of a frame after the first the demo heard of: the graph's first frames, and
        # their depth in the grounding node, can come before every subscription is matched
        heard = stamp_to_ns(truths[0].header.stamp)
        if spin_until(node, lambda: any(stamp_to_ns(p.header.stamp) > heard for p in proposals),
                      PROPOSAL_WAIT_S, watch.check):
            print(f" {len(proposals[-1].entities)} outlines after {time.monotonic() - waited:.1f} s")
        else:
            print(f" none after {PROPOSAL_WAIT_S:.0f} s; answering without them")
        prompts = ["Describe the scene."]
        if truth.names:
            prompts.append(f"Where is the {truth.names[0]}?")
            prompts.append(f"Pick up the {truth.names[-1]}.")
        results = []
        for number, prompt in enumerate(prompts, 1):
            print(f"\nQuestion {number}: {prompt}\n  Answer: ", end="", flush=True)
            shown = [0]

            def stream(feedback, shown=shown):
                text = feedback.feedback.partial_text
                print(text[shown[0]:], end="", flush=True)
                shown[0] = len(text)

            watch.check()
            response = ask(node, prompt, NAMESPACE, timeout=240.0, on_feedback=stream)
            command = prompt.startswith("Pick up")
            if response.text[shown[0]:]:
                print(response.text[shown[0]:], end="")
            if response.status == 0 and not response.text.strip() and command:
                # the embedded model learnt to describe and answer, never to reply to a command
                print("(none: this model learnt to describe and answer, not to reply to a "
                      "command; the target below comes from the command's own words)", end="")
            print()
            results.append(response)
            if command:
                _print_target(response, truths, truth.names[-1])
            else:
                print_phrases(response)
            if response.status == 0:
                path = out_dir / f"{number}_{_slug(prompt)}.png"
                print(f"  Picture: {_write_picture(node, frames, response, path, command)}")
        _print_scores([r for r, p in zip(results, prompts) if not p.startswith("Pick up")],
                      truths, scorer)
        print(f"\n[demo] Done in {time.monotonic() - started:.0f} s; the graph's log is {log_path}")
        return 0 if all(r.status == 0 for r in results) else 1
    except (TimeoutError, GraphFailed) as exc:
        why = watch.failure() if isinstance(exc, TimeoutError) else None  # the cause, if logged
        print(f"\n[demo] {why or exc}; see {log_path}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\n[demo] Interrupted: stopping the graph", file=sys.stderr)
        return 130
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        graph.terminate()
        try:
            graph.wait(timeout=20)
        except subprocess.TimeoutExpired:
            graph.kill()
        log.close()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _sigterm_raises_keyboard_interrupt():
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does; returns the handler it replaced (None
    off the main thread, where Python cannot set one)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _write_picture(node, frames: RecentFrames, response, path: Path, target: bool = False) -> str:
    """Save the response's picture (its target alone when `target`); returns the path, or why
    there is none."""
    stamp = stamp_to_ns(response.header.stamp)
    spin_until(node, lambda: frames.nearest(stamp) and frames.nearest(stamp)[1] == 0, 2.0)
    found = frames.nearest(stamp)
    if found is None:
        return "none (no camera frame received)"
    frame, off_ns = found
    zoom = ZOOM if frame.width <= 400 else 1
    save_png(path, (target_picture if target else answer_picture)(response, frame, zoom=zoom))
    if off_ns:  # the simulated scene holds still, so a neighbouring frame shows the same view
        return f"{path} (drawn on the camera frame {off_ns / 1e9:.1f} s from the one answered)"
    return str(path)


def _print_target(response, truths, name: str) -> None:
    """What a manipulator would act on: the command's target, its pixels and its position."""
    if response.status != 0:
        print_phrases(response)
        return
    print(f"  Answered in {response.total_ms / 1000:.1f} s.")
    if 0 <= response.absent < len(response.prompt_phrases):
        print(f"  Found nothing that is {response.prompt_phrases[response.absent].text!r}.")
        return
    if not 0 <= response.target < len(response.prompt_phrases):
        print("  The command names no object to act on.")
        return
    p = response.prompt_phrases[response.target]
    print(f"  The command is about {target_where(p)}")
    if intent := INTENT_WORDS.get(response.intent):  # what a robot may do with it
        print(f"  It asks the robot {intent}.")
    truth = _truth_of(response, truths)
    true = None
    if truth is not None and name in truth.names and len(truth.centroids) == len(truth.names):
        c = truth.centroids[list(truth.names).index(name)]
        true = np.array([c.x, c.y, c.z])
    if not p.depth_points:
        print("  Its position in space: unknown ("
              f"{response.position_error or 'no depth under its mask'})")
        return
    found = np.array([p.position.x, p.position.y, p.position.z])
    print("  Where it is, in metres from the camera (right, down, forward):")
    print(f"    found from the depth image:  {_xyz(found)}")
    if true is not None:
        print(f"    the simulator's truth:       {_xyz(true)}  "
              f"({100 * np.linalg.norm(found - true):.1f} cm apart)")


def _xyz(v) -> str:
    return f"({v[0]:+.3f}, {v[1]:+.3f}, {v[2]:.3f})"


def _truth_of(response, truths):
    by_stamp = {stamp_to_ns(t.header.stamp): t for t in truths}
    return by_stamp.get(stamp_to_ns(response.header.stamp)) or (truths[-1] if truths else None)


def _load_scorer():
    """The text-similarity model that scores answers, loaded quietly: it is installed with the
    package (nothing to download), so a loading bar would only break up the demo's output."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils.logging import disable_progress_bar

    from ros_ground.evaluate.metrics import TextSimilarity

    disable_progress_bars()
    disable_progress_bar()
    scorer = TextSimilarity()
    scorer.model()
    return scorer


def _print_scores(responses, truths, scorer) -> None:
    """How the answers compare with the simulator's ground truth of the frames they grounded."""
    from ros_ground.evaluate import SIM_VOCABULARY
    from ros_ground.evaluate.metrics import GTPhrase, PredPhrase, evaluate_image

    by_stamp = {stamp_to_ns(t.header.stamp): t for t in truths}
    records = []
    for response in responses:
        truth = by_stamp.get(stamp_to_ns(response.header.stamp)) or truths[-1]
        gt = [GTPhrase(name, msg_to_mask(m)) for name, m in zip(truth.names, truth.masks)]
        if response.prompt.startswith("Where is") and gt:
            gt = gt[:1]
        preds = [PredPhrase(p.text, phrase.mask, phrase.point)
                 for p, phrase in ((p, msg_to_phrase(p)) for p in response.phrases)]
        records.append(evaluate_image(preds, gt, scorer, SIM_VOCABULARY))
    found, objects = sum(r.matches for r in records), sum(r.num_gt for r in records)
    hits, named = sum(r.points_hit for r in records), sum(r.points_total for r in records)
    overlap = float(np.mean([r.miou for r in records])) if records else 0.0
    print("\n[demo] Checked against the simulator's ground truth:")
    should = ", ".join(f"{r.num_gt} that {response.prompt!r} should name"
                       for r, response in zip(records, responses))
    print(f"  objects found (named closely enough, with a mask covering at least half of it): "
          f"{found} of {objects} ({should})")
    print(f"  average overlap of the masks with the true objects: {overlap:.0%}")
    print(f"  phrases naming a real object whose point lies on it: {hits} of {named}")
    print("  (many scenes, with a random-guess baseline: ros-ground eval --scenes 200 --seed 0)")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")[:40]
