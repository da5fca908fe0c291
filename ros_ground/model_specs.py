"""The checks of the models' specs that read no weights, made together before anything loads.

A robot's bring-up with two wrong models (an LLaVA missing from the cache, a SAM checkpoint at
another path) is told of both at once, rather than of the second only after the first is fixed
and the node configured again (a LLaVA load is tens of seconds). A node makes the same checks
when such a setting is set (ros_ground.nodes.params.spec_change_problem), so that a value the
next configure would refuse is refused then, with configure's words.
"""

from __future__ import annotations


def spec_problems(model: str | None, sam_model: str | None, sam_checkpoint: str | None = None,
                  device: str = "auto", allow_download: bool = False,
                  spacy_model: str | None = None, pair_checks: bool = True) -> list[Exception]:
    """Each problem `check_sam_spec` (unless `sam_model` is None: a SAM shared from elsewhere),
    `check_lmm_spec` (unless `model` is None: a node without an LMM) and `check_spacy` (unless
    `spacy_model` is None) find, in that order, without loading anything: SamLoadError,
    ModelLoadError, SpacyUnavailableError; [] when there is none. `pair_checks`: see
    check_sam_spec."""
    from ros_ground.lmm import check_lmm_spec
    from ros_ground.phrases import SpacyUnavailableError, check_spacy
    from ros_ground.sam import check_sam_spec

    checks = []
    if sam_model is not None:
        checks.append(lambda: check_sam_spec(sam_model, sam_checkpoint, device, pair_checks))
    if model is not None:
        checks.append(lambda: check_lmm_spec(model, allow_download))
    if spacy_model is not None:
        checks.append(lambda: check_spacy(spacy_model))
    problems = []
    for check in checks:
        try:
            check()
        except (ValueError, SpacyUnavailableError) as exc:  # SamLoadError, ModelLoadError
            problems.append(exc)
    return problems


def joined(problems: list[Exception]) -> Exception | None:
    """The one error that says every problem of `problems`: the problem itself for one, a
    ModelLoadError joining them ("...; and ...") for several, None for none."""
    from ros_ground.lmm import ModelLoadError

    if len(problems) == 1:
        return problems[0]
    if problems:
        return ModelLoadError("; and ".join(str(p).rstrip(".") for p in problems))
    return None


def check_model_specs(model: str, sam_model: str | None, sam_checkpoint: str | None = None,
                      device: str = "auto", allow_download: bool = False,
                      spacy_model: str | None = None) -> None:
    """Raise what `spec_problems` finds, before any weights load: SamLoadError, ModelLoadError
    or SpacyUnavailableError for one problem, ModelLoadError joining them all for several."""
    error = joined(spec_problems(model, sam_model, sam_checkpoint, device, allow_download,
                                 spacy_model))
    if error is not None:
        raise error
