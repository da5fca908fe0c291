"""`ros-ground eval`: build the engine from the flags, run the protocol, print the report."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial

from ros_ground.engine import EngineConfig, build_engine_from_settings
from ros_ground.evaluate.report import (
    format_absent_report,
    format_region_report,
    format_report,
    provenance,
    report_json,
    run_settings,
    say_weights_changed,
    weights_named,
)
from ros_ground.evaluate.run import evaluate
from ros_ground.evaluate.scenes import SIM_VOCABULARY
from ros_ground.retrieval import SCORINGS
from ros_ground.sam.proposals import PROPOSAL_DEFAULTS, changed_settings
from ros_ground.settings import AMG_NAMES, TARGET_SCORE_OFF
from ros_ground.train.data import check_eval_seeds


def run_eval(args, config: EngineConfig) -> int:
    """`ros-ground eval`: `args` name the models and the run, `config` the engine settings.

    The proposal flags (settings.AMG_NAMES: `--points-per-side`, `--pred-iou-thresh`,
    `--proposal-zoom`, ...) set the proposals of mode auto / entities, and the engine's own when
    a frame has none, as the mask_proposal_node's parameters do. Raises ValueError, before any
    model loads, for one given a value other than its default where no proposals are made
    (`points_per_batch`, which changes no mask, is let through), and for `--dump` with
    `--prompt absent`, which writes nothing to it.
    """
    scene_set = getattr(args, "scene_set", "in")
    check_eval_seeds(args.seed, args.scenes)  # before loading any model
    if getattr(args, "dump", None) and args.prompt == "absent":
        raise ValueError("--dump writes each answer's overlay and record; --prompt absent keeps "
                         "neither (it counts targets), so leave --dump out")
    proposals = {name: getattr(args, name) for name in AMG_NAMES if hasattr(args, name)}
    given = list(changed_settings({**PROPOSAL_DEFAULTS, **proposals}))
    if given and (args.prompt == "region" or args.mode == "point"):
        raise ValueError("--" + given[0].replace("_", "-") + " sets the mask proposals; "
                         + ("region prompts make" if args.prompt == "region" else "--mode point makes")
                         + " none, so the flag would change nothing")
    config = replace(config, amg_params={**config.amg_params, **proposals}).validate()
    # the weights' hashes, commit and versions before any model loads: a file rewritten during
    # the run is reported with the hash it had then, and named (say_weights_changed)
    started = provenance(*weights_named(vars(args)))
    engine = build_engine_from_settings(vars(args), config=config)
    if args.prompt == "absent":
        from ros_ground.evaluate.absent import evaluate_absent

        report = evaluate_absent(engine, args.scenes, args.seed, progress=None, scene_set=scene_set)
        report.update(run_settings(engine.config, vars(args), started))
        text = partial(format_absent_report, report, args.model)
    elif args.prompt == "region":
        from ros_ground.evaluate.regions import evaluate_regions

        # progress=None: a bar on stderr when it is a terminal, so --json's stdout stays clean
        report = evaluate_regions(engine, args.scenes, args.seed, SIM_VOCABULARY,
                                  progress=None, scene_set=scene_set, dump=args.dump)
        report.update(run_settings(engine.config, vars(args), started))
        text = partial(format_region_report, report, args.model)
    else:
        # every entity scoring is measured on the same answers: grounding again costs no
        # generation; min_target_score is a retrieval cosine (settings.check_combination), so
        # only tokens keeps it
        off = {"min_target_score": TARGET_SCORE_OFF}
        variants = {"model": {"mode": args.mode},
                    **{f"entity_scoring:{s}": {"mode": args.mode, "entity_scoring": s,
                                               **({} if s == "tokens" else off)}
                       for s in SCORINGS if args.mode != "point"}}
        run = evaluate(engine, args.scenes, args.seed, variants, args.prompt, dump=args.dump,
                       progress=None, scene_set=scene_set)
        report = report_json(run, args.scenes, args.model, args.seed, args.prompt, engine.config,
                             scene_set, vars(args), started)
        text = partial(format_report, report)
    say_weights_changed(report, vars(args))
    print(json.dumps(report) if args.json else text())  # the text only without --json
    return 0
