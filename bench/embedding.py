"""Measurement 3: one SAM image embedding per frame in the composed container.

A GroundingNode and a MaskProposalNode are built in this process exactly as ground_container
builds them (`SharedSam().provider(node)`, config/sim.yaml parameters, proposals for every
frame). For each frame: publish it, wait for its EntityProposals, send a command, wait for the
response; the shared SamSegmenter's `embedding_passes` counter gives the encoder passes the
frame cost both nodes together. The latency saved is what a second, unshared SAM instance
would spend embedding the same frame again: measured side by side as the engine's
`sam_embedding` stage with the shared SAM (cache hit) and with a separate one (cache miss).
"""

from __future__ import annotations

import threading
import time

from bench.breakdown import PROMPT, sim_params
from bench.common import log, median, spin_until_set, tabletop_image, wait_until

NAMESPACE = "/bench_container"


def _proposal_params() -> dict:
    import yaml

    from bench.common import ROOT

    data = yaml.safe_load((ROOT / "config" / "sim.yaml").read_text())
    for key, value in data.items():
        if key.rstrip("/").endswith("mask_proposal_node"):
            return dict(value.get("ros__parameters", {}))
    return {}


def _overrides(values: dict, declared) -> list:
    from rclpy.parameter import Parameter

    names = {p.name for p in declared}
    return [Parameter(k, value=v) for k, v in values.items() if k in names]


def container_passes(context, frames: int, points_per_side: int | None = None) -> dict:
    """Embedding passes per frame with both nodes of the container in this process.

    The proposer keeps every mask (thresholds 0, as tests/test_container.py does) so that the
    random tiny SAM yields proposals and the grounding node takes its entities path;
    `points_per_side` overrides sim.yaml's grid (a smaller one for --quick)."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from ros_ground_msgs.msg import EntityProposals, GroundedResponse
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from ros_ground.nodes import params
    from ros_ground.nodes.common import RELIABLE, autostart
    from ros_ground.nodes.container import SharedSam
    from ros_ground.nodes.conversions import rgb_to_image_msg
    from ros_ground.nodes.executor import CallbackExecutor
    from ros_ground.nodes.grounding_node import GroundingNode
    from ros_ground.nodes.mask_proposal_node import MaskProposalNode

    g_values = {**sim_params(), "publish_overlay": False}
    p_values = {**_proposal_params(), "min_period_s": 0.0, "pred_iou_thresh": 0.0,
                "stability_score_thresh": 0.0}
    if points_per_side:
        p_values["points_per_side"] = points_per_side
    shared_sam = SharedSam()
    grounding = GroundingNode(sam_provider=shared_sam.provider("grounding_node"), namespace=NAMESPACE,
                              context=context,
                              parameter_overrides=_overrides(g_values, params.GROUNDING_PARAMS))
    proposer = MaskProposalNode(sam_provider=shared_sam.provider("mask_proposal_node"), namespace=NAMESPACE,
                                context=context,
                                parameter_overrides=_overrides(p_values, params.PROPOSAL_PARAMS))
    client = rclpy.create_node("bench_container_client", namespace=NAMESPACE, context=context)
    image_pub = client.create_publisher(Image, "image", qos_profile_sensor_data)
    command_pub = client.create_publisher(String, "command", RELIABLE)
    responses: list[GroundedResponse] = []
    proposals: list[EntityProposals] = []
    client.create_subscription(GroundedResponse, "response", responses.append, RELIABLE)
    client.create_subscription(EntityProposals, "proposals", proposals.append, RELIABLE)
    executor = CallbackExecutor(context=context)  # what the container spins on
    stop = threading.Event()
    spinner = None
    try:
        ok = autostart(grounding) and autostart(proposer)
        if not ok:
            raise RuntimeError("container nodes failed to configure/activate")
        g = params.values(grounding, params.GROUNDING_PARAMS)
        q = params.values(proposer, params.PROPOSAL_PARAMS)
        # the provider hands both nodes one SamSegmenter per (spec, checkpoint, device)
        sam = shared_sam.provider("grounding_node")(g["sam_model"], g["sam_checkpoint"] or None, g["device"])
        shared = (g["sam_model"], g["sam_checkpoint"], g["device"]) == (
            q["sam_model"], q["sam_checkpoint"], q["device"])
        for n in (grounding, proposer, client):
            executor.add_node(n)
        spinner = threading.Thread(target=lambda: spin_until_set(executor, stop), daemon=True)
        spinner.start()
        wait_until(lambda: command_pub.get_subscription_count() > 0
              and image_pub.get_subscription_count() >= 2, 20)
        per_frame, modes, entity_phrases = [], [], 0
        for i in range(frames):
            msg = rgb_to_image_msg(tabletop_image(240, 320, seed=10 + i))
            msg.header.frame_id = "bench_camera"
            msg.header.stamp.sec = 1000 + i
            before = sam.embedding_passes

            def has_proposals(sec=1000 + i):
                return any(p.header.stamp.sec == sec for p in proposals)

            deadline = time.monotonic() + 30
            while not has_proposals() and time.monotonic() < deadline:
                image_pub.publish(msg)  # best effort: repeat until this frame's proposals arrive
                wait_until(has_proposals, 0.3)
            if not has_proposals():
                raise RuntimeError(f"no proposals for frame {i}")
            image_pub.publish(msg)  # the grounding node's latest frame is this one
            time.sleep(0.1)
            start = len(responses)
            command_pub.publish(String(data=PROMPT))
            if not wait_until(lambda start=start: len(responses) > start, 60):
                raise RuntimeError(f"no response for frame {i}")
            response = responses[start]
            if response.status != GroundedResponse.STATUS_OK:
                raise RuntimeError(f"frame {i}: status {response.status}: {response.error}")
            time.sleep(0.3)  # let the proposer finish any repeat of this frame (a cache hit)
            per_frame.append(sam.embedding_passes - before)
            entity_phrases += sum(1 for p in response.phrases if p.entity_ids)
            modes.append("entities" if any(p.entity_ids for p in response.phrases) else "point")
        frame_proposals = [len(p.entities) for p in proposals]
        return {"frames": frames, "shared_instance": shared, "passes_per_frame": per_frame,
                "points_per_side": p_values.get("points_per_side"),
                "embedding_passes_per_frame": max(per_frame) if per_frame else None,
                "grounding_modes": modes, "phrases_grounded_on_entities": entity_phrases,
                "proposals_per_frame_median": median(frame_proposals)}
    finally:
        stop.set()
        if spinner is not None:
            spinner.join(timeout=5)
        for n in (grounding, proposer):
            n.shutdown_worker()
        for n in (grounding, proposer):  # a run in flight must not publish after destroy_node
            worker = getattr(n, "_worker", None)
            if worker is not None:
                worker.join(timeout=30)
        executor.shutdown()
        for n in (grounding, proposer, client):
            n.destroy_node()


def saved_latency(engine, reps: int) -> dict:
    """What the grounding side pays to embed a frame the proposer already embedded: with the
    shared SAM (a cache hit) vs a separate SAM instance (a second encoder pass); interleaved.

    The proposer's part is `set_image` (the first thing `SamSegmenter.propose` does); the
    grounding part is making the same frame current, which the engine's first SAM call does
    and reports in its `sam_embedding` stage.
    """
    from ros_ground.sam import load_sam

    separate = load_sam(sim_params().get("sam_model", "tiny"), device=str(engine.lmm.device))
    image = tabletop_image(240, 320, seed=5)
    grounding_ms = {"shared": [], "separate": []}
    passes = {"shared": [], "separate": []}
    for i in range(reps):
        for variant in (("shared", "separate") if i % 2 == 0 else ("separate", "shared")):
            key = ("saved", variant, i)
            proposer = engine.sam if variant == "shared" else separate
            before = engine.sam.embedding_passes + separate.embedding_passes
            proposer.set_image(image, key=key)  # the proposal node embeds the frame
            t0 = time.perf_counter()
            engine.sam.set_image(image, key=key)  # in the grounding node's sam_embedding stage
            grounding_ms[variant].append((time.perf_counter() - t0) * 1e3)
            passes[variant].append(engine.sam.embedding_passes + separate.embedding_passes
                                   - before)
    return {
        "reps": reps,
        "sam_embedding_stage_ms": {k: median(v) for k, v in grounding_ms.items()},
        "passes_per_frame": {k: median(v) for k, v in passes.items()},
        "saved_ms_per_frame": median(grounding_ms["separate"]) - median(grounding_ms["shared"]),
    }


def released_sam_embedding_ms(spec: str = "vit_b", reps: int = 1) -> dict | None:
    """Embedding time of a released SAM architecture (random weights: timing only)."""
    from segment_anything import sam_model_registry

    from ros_ground.sam import SamSegmenter

    try:  # load_sam refuses a released architecture without its checkpoint
        sam = SamSegmenter(sam_model_registry[spec](checkpoint=None), device="cpu")
    except Exception as exc:  # noqa: BLE001 - optional extra
        log(f"embedding: {spec} unavailable: {exc}")
        return None
    image = tabletop_image(240, 320)
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        sam.set_image(image, key=("released", i))
        times.append((time.perf_counter() - t0) * 1e3)
    del sam
    return {"spec": spec, "embedding_ms": median(times), "reps": reps}


def run_embedding(context, engine, quick: bool) -> dict:
    frames = 2 if quick else 5
    log(f"embedding: container nodes in-process, {frames} frames")
    out = {"container": container_passes(context, frames)}
    log("embedding: shared vs separate SAM, side by side")
    out["saved"] = saved_latency(engine, 5 if quick else 20)
    if not quick:
        log("embedding: one SAM ViT-B embedding (random weights) for scale")
        out["vit_b"] = released_sam_embedding_ms("vit_b", reps=1)
    return out
