"""RESULTS.md sections 3 and 4: SAM embedding reuse in the composed container, and the
masks' transport (RLE against mono8 Images) between nodes."""

from __future__ import annotations

from bench.report_format import fmt, open_section


def embedding_section(lines, r, emb):
    add = lines.append
    if not open_section(lines, "3. Embedding reuse (composed container)", emb):
        return
    c = emb.get("container") or {}
    s = emb.get("saved") or {}
    add(f"A GroundingNode and a MaskProposalNode built in one process as `ground_container` "
        f"builds them (`SharedSam().provider(node)`, sim.yaml parameters except: "
        f"proposals for every frame, score thresholds 0 so the random tiny SAM yields "
        f"proposals, {c.get('points_per_side')} points per side). Per frame: publish it, wait "
        f"for its EntityProposals, send a command, wait for the response. SAM encoder passes "
        f"per frame (both nodes together): "
        f"**{c.get('passes_per_frame')}** over {c.get('frames')} frames (grounding used "
        f"{c.get('grounding_modes')}; median {fmt(c.get('proposals_per_frame_median'), 0)} "
        f"proposals per frame).")
    add("")
    if s:
        add(f"Latency saved, side by side ({s['reps']} reps each): the engine's `sam_embedding` "
            f"stage is {fmt(s['sam_embedding_stage_ms']['shared'])} ms with the shared SAM "
            f"(proposer already embedded the frame; passes per frame "
            f"{fmt(s['passes_per_frame']['shared'], 0)}) vs "
            f"{fmt(s['sam_embedding_stage_ms']['separate'])} ms with a separate SAM instance "
            f"(passes per frame {fmt(s['passes_per_frame']['separate'], 0)}): "
            f"**{fmt(s['saved_ms_per_frame'])} ms saved per frame** with the tiny SAM.")
    vit = emb.get("vit_b")
    if vit:
        add(f"For scale, one embedding with SAM ViT-B's architecture (random weights) takes "
            f"{fmt(vit['embedding_ms'] / 1000, 1)} s on this CPU: the saving per frame with a "
            f"released model (ViT-H costs several times more).")
    add("")


def transport_section(lines, r, tr):
    add = lines.append
    if not open_section(lines, "4. Mask transport", tr):
        return
    s, c, lat = tr["sizes"], tr["codec"], tr["latency_ms"]
    add(f"A GroundedResponse with {s['phrases']} phrases on a {s['frame'][1]}x{s['frame'][0]} "
        f"frame, masks = ellipses and notched rectangles covering {min(s['coverage_pct'])}-"
        f"{max(s['coverage_pct'])} % each. RLE: the masks as MaskRLE in the response. Image: the "
        f"response with empty counts plus one mono8 `sensor_msgs/Image` per phrase. Bytes are "
        f"`rclpy.serialization.serialize_message` lengths.")
    add("")
    add("| | RLE | mono8 Images | ratio |")
    add("|---|---|---|---|")
    add(f"| bytes on the wire (whole response) | {s['rle_message_bytes']} | "
        f"{s['image_variant_bytes']} | **{fmt(s['rle_size_ratio'], 1)}x** |")
    add(f"| bytes of the masks only | {s['rle_mask_bytes']} | {s['image_variant_images_bytes']} "
        f"| {fmt(s['rle_size_ratio_masks_only'], 1)}x |")
    add(f"| publish -> receive p50 (ms) | {fmt(lat['rle']['p50'])} | {fmt(lat['image']['p50'])} | |")
    add(f"| publish -> receive p99 (ms) | {fmt(lat['rle']['p99'])} | {fmt(lat['image']['p99'])} | |")
    add(f"| messages (lost) | {lat['rle']['n']} ({lat['rle']['lost']}) | {lat['image']['n']} "
        f"({lat['image']['lost']}) | |")
    add("")
    add(f"Latency: two processes, reliable QoS, the variants alternating with one response in "
        f"flight at a time (the subscriber acks each complete response; "
        f"{lat.get('ack_timeouts', 0)} acks timed out); an image-variant response counts as "
        f"received when its last Image arrived. Messages are built before the clock starts "
        f"(building, incl. RLE encoding: RLE {fmt(lat['build_ms']['rle'])} ms, images "
        f"{fmt(lat['build_ms']['image'])} ms).")
    dm = tr.get("sizes_default_model_masks")
    if dm:
        add(f"With the masks the default models produced in section 2 ({dm['phrases']} phrases, "
            f"{dm['frame'][1]}x{dm['frame'][0]}, random-weight tiny SAM): RLE "
            f"{dm['rle_message_bytes']} B vs images {dm['image_variant_bytes']} B, "
            f"{fmt(dm['rle_size_ratio'], 1)}x.")
    add("")
    add(f"Codec (`ros_ground.rle`, {c['reps']} reps, 10 masks, medians of the thread's CPU "
        f"time): encode {fmt(c['encode_ms'])} ms + decode {fmt(c['decode_ms'])} ms = "
        f"**{fmt(c['encode_decode_ms'])} ms** (p99 {fmt(c['encode_decode_p99_ms'])}; wall clock "
        f"{fmt(c.get('encode_decode_wall_ms'))} ms, p99 {fmt(c.get('encode_decode_wall_p99_ms'))}); "
        f"through MaskRLE messages (`mask_to_msg` + `msg_to_mask`, wall) "
        f"{fmt(c['via_messages_ms'])} ms.")
    add("")
