"""`ros-ground eval`: build the engine from the flags, run the protocol, print the report."""

from __future__ import annotations

import json
from dataclasses import replace

from ros_ground.engine import EngineConfig, build_engine_from_settings
from ros_ground.evaluate.report import format_region_report, format_report, report_json
from ros_ground.evaluate.run import evaluate
from ros_ground.evaluate.scenes import SIM_VOCABULARY
from ros_ground.retrieval import SCORINGS
from ros_ground.train.data import check_eval_seeds


def run_eval(args, config: EngineConfig) -> int:
    """`ros-ground eval`: `args` name the models and the run, `config` the engine settings.

    Raises ValueError, before any model loads, for crop layers or zoom crops where no
    proposals are made.
    """
    scene_set = getattr(args, "scene_set", "in")
    check_eval_seeds(args.seed, args.scenes)  # before loading any model
    crops = {"crop_n_layers": getattr(args, "crop_n_layers", 0),
             "proposal_zoom": getattr(args, "proposal_zoom", False)}
    given = [name for name, value in crops.items() if value]
    if given and (args.prompt == "region" or args.mode == "point"):
        raise ValueError("--" + given[0].replace("_", "-") + " sets the mask proposals' crops; "
                         + ("region prompts make" if args.prompt == "region" else "--mode point makes")
                         + " none, so the flag would change nothing")
    # the proposals, and the engine's own when a frame has none, as the proposal node's
    config = replace(config, amg_params={**config.amg_params, **crops}).validate()
    engine = build_engine_from_settings(vars(args), config=config)
    if args.prompt == "region":
        from ros_ground.evaluate.regions import evaluate_regions

        # progress=None: a bar on stderr when it is a terminal, so --json's stdout stays clean
        report = evaluate_regions(engine, args.scenes, args.seed, SIM_VOCABULARY,
                                  progress=None, scene_set=scene_set)
        print(json.dumps(report) if args.json else format_region_report(report, args.model))
        return 0
    # every entity scoring is measured on the same answers: grounding again costs no generation
    variants = {"model": {"mode": args.mode},
                **{f"entity_scoring:{s}": {"mode": args.mode, "entity_scoring": s}
                   for s in SCORINGS if args.mode != "point"}}
    run = evaluate(engine, args.scenes, args.seed, variants, args.prompt, dump=args.dump,
                   progress=None, scene_set=scene_set)
    report = report_json(run, args.scenes, args.model, args.seed, args.prompt, engine.config,
                         scene_set)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0
