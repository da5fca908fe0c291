"""The checks of the models' specs that read no weights, made together before anything loads.

A robot's bring-up with two wrong models (an LLaVA missing from the cache, a SAM checkpoint at
another path) is told of both at once, rather than of the second only after the first is fixed
and the node configured again (a LLaVA load is tens of seconds).
"""

from __future__ import annotations


def check_model_specs(model: str, sam_model: str | None, sam_checkpoint: str | None = None,
                      device: str = "auto", allow_download: bool = False) -> None:
    """Raise what `check_sam_spec` (unless `sam_model` is None: a SAM shared from elsewhere)
    and `check_lmm_spec` raise, before any weights load: SamLoadError or ModelLoadError for one
    problem, ModelLoadError joining both ("...; and ...") for two."""
    from ros_ground.lmm import ModelLoadError, check_lmm_spec
    from ros_ground.sam import check_sam_spec

    checks = [lambda: check_lmm_spec(model, allow_download)]
    if sam_model is not None:
        checks.insert(0, lambda: check_sam_spec(sam_model, sam_checkpoint, device))
    problems = []
    for check in checks:
        try:
            check()
        except ValueError as exc:  # SamLoadError, ModelLoadError
            problems.append(exc)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ModelLoadError("; and ".join(str(p).rstrip(".") for p in problems))
