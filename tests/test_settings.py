"""Every setting's node default, CLI default, EngineConfig default and README row come from its
one declaration in ros_ground/settings.py, and every value is checked there."""

import sys
from pathlib import Path

import pytest

from ros_ground import settings
from ros_ground.cli import build_parser, engine_config
from ros_ground.engine import EngineConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from param_table import row  # noqa: E402

ALL = settings.GROUNDING + settings.PROPOSAL + settings.SIM_CAMERA


@pytest.mark.parametrize("s", ALL, ids=lambda s: s.name)
def test_the_declared_default_is_allowed_and_in_the_readme(s):
    s.check(s.default)
    assert row(s) in (ROOT / "README.md").read_text(), f"README row of {s.name} is stale"


def test_engine_config_defaults_are_the_declared_ones():
    config = EngineConfig()
    for s in settings.ENGINE:
        assert getattr(config, s.field) == s.check(s.default), s.name


@pytest.mark.parametrize("command", ["ground", "eval"])
def test_cli_flags_default_to_the_declaration_and_reproduce_the_node(command):
    extra = ["--image", "x.png"] if command == "ground" else []
    args = vars(build_parser().parse_args([command, *extra]))
    for s in settings.GROUNDING:
        if s.cli:
            got = args[s.name]
            got = got.split(",") if isinstance(s.default, list) and isinstance(got, str) else got
            assert (got if got is not None else "") == s.default, s.name
    # every engine setting is a flag: the command line can run the node's engine exactly
    assert all(s.cli for s in settings.ENGINE)
    assert engine_config(build_parser().parse_args([command, *extra])) == EngineConfig()


def test_cli_flags_reach_the_engine_config():
    args = build_parser().parse_args([
        "ground", "--image", "x.png", "--multimask-choice", "2", "--no-normalise-maps",
        "--attention-views", "identity,vflip", "--phrase-contrast", "0.25"])
    config = engine_config(args)
    assert (config.multimask_choice, config.normalise, config.attention_views,
            config.phrase_contrast) == (2, False, ("identity", "vflip"), 0.25)


@pytest.mark.parametrize("flag,value", [("--phrase-contrast", "1.5"), ("--mode", "magic"),
                                        ("--multimask-choice", "7"),
                                        ("--attention-views", "identity,mirror"),
                                        ("--max-new-tokens", "0"), ("--phrase-contrast", "nan"),
                                        ("--device", "banana"), ("--device", "cuda:x"),
                                        ("--device", "gpu")])
def test_cli_rejects_what_the_node_rejects(flag, value, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ground", "--image", "x.png", flag, value])
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize("field,value", [("phrase_contrast", 1.5), ("mode", "magic"),
                                         ("multimask_choice", 5), ("entity_margin", -0.1),
                                         ("attention_views", ("vflip", "vflip"))])
def test_engine_config_rejects_through_the_same_check(field, value):
    with pytest.raises(ValueError):
        EngineConfig(**{field: value}).validate()


@pytest.mark.parametrize("s", [s for s in ALL if isinstance(s.default, float)], ids=lambda s: s.name)
def test_no_number_setting_takes_nan(s):
    with pytest.raises(ValueError, match=f"{s.name} must be a number"):
        s.check(float("nan"))


@pytest.mark.parametrize("s", [s for s in ALL if isinstance(s.default, bool)], ids=lambda s: s.name)
def test_a_switch_takes_only_true_or_false(s):
    """Outside ROS (a dict, a YAML read as text) 'false' is a truthy string: refused."""
    assert s.check(True) is True and s.check(False) is False
    for value in ("false", 0, None):
        with pytest.raises(ValueError, match=f"{s.name} must be true or false"):
            s.check(value)


def test_checks_name_the_setting_and_convert_to_the_engines_form():
    declared = settings.by_name(settings.GROUNDING)
    assert declared["multimask_choice"].check("1") == 1
    assert declared["attention_views"].check(["identity"]) == ("identity",)
    with pytest.raises(ValueError, match="queue_size must be >= 0"):
        declared["queue_size"].check(-1)
    with pytest.raises(ValueError, match="image_qos must be one of"):
        declared["image_qos"].check("fastest")


@pytest.mark.parametrize("name,value", [("seed", -1), ("width", 100000), ("height", 0)])
def test_the_sim_camera_refuses_a_scene_it_cannot_render(name, value):
    with pytest.raises(ValueError, match=name):
        settings.by_name(settings.SIM_CAMERA)[name].check(value)


@pytest.mark.parametrize("frame_id", ["", " ", "/camera", "sim camera"])
def test_the_sim_camera_frame_id_is_one_tf2_can_look_up(frame_id):
    frame = settings.by_name(settings.SIM_CAMERA)["frame_id"]
    with pytest.raises(ValueError, match="frame_id must be a tf2 frame name"):
        frame.check(frame_id)
    assert frame.check("robot/camera_optical_frame") == "robot/camera_optical_frame"


@pytest.fixture
def node_with():
    """A plain rclpy Node made with the given parameter overrides (destroyed after the test)."""
    rclpy = pytest.importorskip("rclpy")
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    rclpy.init()
    made = []

    def make(name: str, **overrides):
        made.append(Node(name, parameter_overrides=[Parameter(k, value=v)
                                                    for k, v in overrides.items()]))
        return made[-1]

    try:
        yield make
    finally:
        for node in made:
            node.destroy_node()
        rclpy.try_shutdown()


def test_a_misspelt_parameter_override_is_warned_about(node_with):
    # ROS ignores an override no parameter is declared for: "rate_hs: 2.0" in a params file
    # left the camera at its default rate without a word
    from ros_ground.nodes.params import declare

    node = node_with("typo_test", rate_hs=2.0, seed=3,
                     model="sim",  # the grounding node's: a shared section is fine
                     **{"qos_overrides./image_raw.publisher.depth": 3, "zzz_unrelated": 1})
    said = []
    node.get_logger = lambda: type("Log", (), {"warning": lambda self, text: said.append(text)})()
    assert declare(node, settings.SIM_CAMERA) == {}
    assert node.get_parameter("seed").value == 3
    assert said == [
        "parameter 'rate_hs' was given but is not one of this node's, so it is ignored: did "
        "you mean 'rate_hz'?",
        "parameter 'zzz_unrelated' was given but is not one of this node's, so it is ignored"]
    # on another node, the hint says whose parameter the close name is
    said.clear()
    assert declare(node, settings.PROPOSAL) == {}
    assert said[0] == ("parameter 'rate_hs' was given but is not one of this node's, so it is "
                       "ignored: did you mean 'rate_hz' (a sim_camera_node parameter)?"), said


def test_an_override_yaml_typed_otherwise_is_taken_where_what_was_meant_is_clear(node_with):
    # "max_frame_age_s: 0" (README: 0 accepts any age) and "multimask_choice: 1" (README: iou /
    # 0 / 1 / 2) are typed INTEGER by YAML, "compile: off" BOOL; rclpy refused each, saying only
    # the type numbers
    from ros_ground.nodes.params import declare

    node = node_with("retype_test", max_frame_age_s=5, multimask_choice=1, compile=False,
                     mode="auto", queue_size=3.0, phrase_contrast=0)
    assert declare(node, settings.GROUNDING) == {}
    got = {n: node.get_parameter(n).value for n in ("max_frame_age_s", "multimask_choice", "compile",
                                                    "queue_size", "phrase_contrast")}
    assert got == {"max_frame_age_s": 5.0, "multimask_choice": "1", "compile": "off",
                   "queue_size": 3, "phrase_contrast": 0.0}
    assert type(got["max_frame_age_s"]) is float and type(got["queue_size"]) is int
    # as ros2 param describe shows it: the declared type, not the YAML one
    assert node.describe_parameter("max_frame_age_s").type == 3  # DOUBLE


def test_an_override_of_the_wrong_yaml_type_is_refused_with_how_to_write_it(node_with):
    from ros_ground.nodes.params import declare

    node = node_with("type_test", image_qos=1, device=0, queue_size=2.5, max_frame_age_s=-3,
                     phrase_tokens=True)
    refused = declare(node, settings.GROUNDING)
    assert set(refused) == {"image_qos", "device", "queue_size", "max_frame_age_s", "phrase_tokens"}
    # a number or boolean that is no choice: how to quote it, with a value that is allowed
    assert "image_qos: \"auto\"" in refused["image_qos"]
    assert "one of auto / reliable / sensor_data / best_effort" in refused["image_qos"]
    assert "a bare on / off / yes / no as a boolean" in refused["device"]
    # a boolean is taken as on / true / yes only where the choices hold such a word
    assert "phrase_tokens: \"chunk\"" in refused["phrase_tokens"]
    assert "queue_size" in refused and "max_frame_age_s" in refused
    # retyped, then out of range: the range is what is said
    assert "out of range" in refused["max_frame_age_s"], refused["max_frame_age_s"]
    for name in refused:
        assert node.get_parameter(name).value == settings.by_name(settings.GROUNDING)[name].default


def test_a_number_that_is_no_choice_is_not_told_to_quote_it(node_with):
    # a number given for a choice ("multimask_choice: 3") is told the allowed values, not to
    # quote it: "3" quoted is refused as well
    from ros_ground.nodes.params import declare

    node = node_with("choice_hint_test", multimask_choice=3)
    why = declare(node, settings.GROUNDING)["multimask_choice"]
    assert why.endswith("(3 is refused quoted too: multimask_choice must be one of iou / 0 / 1 / 2, "
                        "as text: multimask_choice: \"0\" or -p 'multimask_choice:=\"0\"')"), why
    assert "quote the text" not in why


def test_node_parameters_default_and_range_as_declared():
    rclpy = pytest.importorskip("rclpy")
    from ros_ground.nodes.grounding_node import GroundingNode
    from ros_ground.nodes.mask_proposal_node import MaskProposalNode
    from ros_ground.nodes.params import descriptor

    rclpy.init()
    nodes = []
    try:
        nodes = [GroundingNode(namespace="/settings"), MaskProposalNode(namespace="/settings")]
        for node, table in zip(nodes, (settings.GROUNDING, settings.PROPOSAL)):
            for s in table:
                assert node.get_parameter(s.name).value == s.default, s.name
                d = descriptor(s)
                ranges = list(d.floating_point_range) + list(d.integer_range)
                assert bool(ranges) == (s.low is not None or s.high is not None), s.name
                for r in ranges:
                    assert s.low is None or r.from_value == s.low
                    assert s.high is None or r.to_value == s.high
            live = [s for s in table if s.live]
            assert live and all("read at configure" not in descriptor(s).description
                                for s in live)
        too_big = nodes[0].set_parameters([rclpy.parameter.Parameter("phrase_contrast",
                                                                     value=1.5)])[0]
        assert not too_big.successful
    finally:
        for node in nodes:
            node.shutdown_worker()
            node.destroy_node()
        rclpy.try_shutdown()


def test_ros2_param_set_of_a_value_yaml_typed_otherwise():
    # `ros2 param set /ground/grounding_node max_frame_age_s 0` sends an INTEGER: rclpy refused it
    # with "Wrong parameter type, expected '3' got '2'"
    rclpy = pytest.importorskip("rclpy")
    from rclpy.parameter import Parameter

    from ros_ground.nodes.grounding_node import GroundingNode

    rclpy.init()
    node = None
    try:
        node = GroundingNode(namespace="/retype")
        said = []
        node.get_logger = lambda: type("Log", (), {"warning": lambda self, t: said.append(t),
                                                   "info": lambda self, t: None})()
        results = node.set_parameters([Parameter("max_frame_age_s", value=0),
                                       Parameter("compile", value=False),
                                       Parameter("multimask_choice", value=2),
                                       Parameter("max_new_tokens", value=48.0)])
        assert all(r.successful for r in results), [r.reason for r in results]
        assert node.get_parameter("max_frame_age_s").value == 0.0
        assert type(node.get_parameter("max_frame_age_s").value) is float
        assert node.get_parameter("compile").value == "off"
        assert node.get_parameter("multimask_choice").value == "2"
        assert node.get_parameter("max_new_tokens").value == 48
        assert said == []
        # retyped, the value still meets the range and the setting's own check
        low = node.set_parameters([Parameter("max_frame_age_s", value=-1)])[0]
        assert not low.successful and "out of range" in low.reason
        bad = node.set_parameters([Parameter("multimask_choice", value=7)])[0]
        assert not bad.successful and ("7 is refused quoted too: multimask_choice must be one of "
                                       "iou / 0 / 1 / 2") in said.pop()
        # what cannot be retyped is refused, and the node says how to write it
        device = node.set_parameters([Parameter("device", value=0)])[0]
        assert not device.successful and node.get_parameter("device").value == "auto"
        assert len(said) == 1 and said[0].startswith("parameter device: 0 is refused, expected "
                                                     "STRING got INTEGER")
        assert 'device: "auto"' in said[0], said
        # a name the node lacks: rclpy refuses it ("Invalid access to undeclared parameter(s):
        # []"), and the node says what was meant
        from rclpy.exceptions import ParameterNotDeclaredException

        with pytest.raises(ParameterNotDeclaredException):
            node.set_parameters([Parameter("max_frame_age", value=2.0)])
        assert said[-1] == "parameter 'max_frame_age' is not one of this node's: did you mean " \
                           "'max_frame_age_s'?"
    finally:
        if node is not None:
            node.shutdown_worker()
            node.destroy_node()
        rclpy.try_shutdown()


def test_rclpys_own_parameters_and_empty_lists_are_answered():
    # `ros2 param set ... use_sim_time true` is answered: a KeyError in the callback would only
    # be logged by rclpy's executor, the set-parameters service (and param load) never
    # answering; `-p cameras:=[]` must not end the node (an empty list is declared untyped)
    rclpy = pytest.importorskip("rclpy")
    from rclpy.parameter import Parameter

    from ros_ground.nodes.grounding_node import GroundingNode
    from ros_ground.nodes.mask_proposal_node import MaskProposalNode

    rclpy.init()
    nodes = []
    try:
        nodes.append(GroundingNode(namespace="/empty", cli_args=["--ros-args", "-p", "cameras:=[]"]))
        nodes.append(MaskProposalNode(namespace="/empty", cli_args=["--ros-args", "-p",
                                                                   "cameras:=[]"]))
        for node in nodes:
            assert "cameras must name at least one camera" in node._refused["cameras"]
            sim_time = node.set_parameters([Parameter("use_sim_time", value=True)])[0]
            assert sim_time.successful and node.get_parameter("use_sim_time").value is True
        node = nodes[0]
        empty = node.set_parameters([Parameter("attention_views", value=[])])[0]
        assert not empty.successful and "needs at least one of" in empty.reason
        mended = node.set_parameters([Parameter("cameras", value=["left", "right"])])[0]
        assert mended.successful and "cameras" not in node._refused
    finally:
        for node in nodes:
            node.shutdown_worker()
            node.destroy_node()
        rclpy.try_shutdown()


def test_a_set_parameters_callback_that_raises_still_answers():
    from ros_ground.nodes.params import refusing_on_error

    def broken(changes):
        raise KeyError("use_sim_time")

    change = type("Change", (), {"name": "use_sim_time"})()
    result = refusing_on_error(broken)([change])
    assert not result.successful and result.reason == "setting use_sim_time failed: KeyError: 'use_sim_time'"


@pytest.mark.parametrize("group", [settings.GROUNDING, settings.PROPOSAL])
def test_a_device_is_checked_by_its_form_before_torch(group):
    device = settings.by_name(group)["device"]
    for ok in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        assert device.check(ok) == ok
    for bad in ("banana", "CUDA", "cuda:", "cuda:-1", "cpu ", 0, None):
        with pytest.raises(ValueError, match="device must be auto / cpu / cuda / cuda:N"):
            device.check(bad)


def test_min_target_score_needs_the_scoring_it_is_a_cosine_of():
    # what a node's set-parameters callback runs on every value after the change
    ok = settings.check(settings.GROUNDING, {"entity_scoring": "tokens", "min_target_score": 0.15})
    assert ok["min_target_score"] == 0.15
    assert settings.check(settings.GROUNDING, {"entity_scoring": "attention",
                                               "min_target_score": -2.0})
    for scoring in ("attention", "combined"):
        # the advice works both ways: turning the threshold on, or changing the scoring
        with pytest.raises(ValueError, match=f"needs entity_scoring tokens .*not {scoring}: to use "
                                             "the threshold, set entity_scoring to tokens first; to "
                                             "score otherwise, set min_target_score to -2"):
            settings.check(settings.GROUNDING, {"entity_scoring": scoring, "min_target_score": 0.15})


def test_min_target_score_needs_the_command_words_that_read_it():
    with pytest.raises(ValueError, match="needs command_words true"):
        settings.check(settings.GROUNDING, {"entity_scoring": "tokens", "min_target_score": 0.15,
                                            "command_words": False})
    assert settings.check(settings.GROUNDING, {"min_target_score": -2.0, "command_words": False})


@pytest.mark.parametrize("group,name", [(settings.GROUNDING, "model"), (settings.GROUNDING, "sam_model"),
                                        (settings.GROUNDING, "spacy_model"),
                                        (settings.PROPOSAL, "sam_model")])
def test_an_empty_model_name_is_refused_not_read_as_the_current_directory(group, name):
    # an empty or blank model name is refused: Path("") is ".", where no model is
    s = settings.by_name(group)[name]
    for empty in ("", " ", "\t"):
        with pytest.raises(ValueError, match=f"{name} must name a model, got "):
            s.check(empty)
    assert s.check(s.default) == s.default


@pytest.mark.parametrize("argv", [["ground", "--image", "x.png", "--model", ""],
                                  ["ground", "--image", "x.png", "--sam-model", " "],
                                  ["ground", "--image", "x.png", "--spacy-model", ""],
                                  ["demo", "--model", ""], ["demo", "--sam-model", ""]])
def test_an_empty_model_flag_is_a_usage_error(argv, capsys):
    from ros_ground.nodes.cli import add_ros_commands

    with pytest.raises(SystemExit) as done:
        build_parser(add_ros_commands).parse_args(argv)
    assert done.value.code == 2 and "must name a model" in capsys.readouterr().err


def test_the_loaders_refuse_an_empty_name():
    from ros_ground.lmm.errors import ModelLoadError
    from ros_ground.lmm.loading import check_lmm_spec
    from ros_ground.phrases import SpacyUnavailableError, load_spacy
    from ros_ground.sam.errors import SamLoadError
    from ros_ground.sam.load import check_sam_spec

    with pytest.raises(ModelLoadError, match="model '' is empty"):
        check_lmm_spec("")
    with pytest.raises(SamLoadError, match="sam_model ' ' is empty"):
        check_sam_spec(" ")
    with pytest.raises(SpacyUnavailableError, match="spaCy pipeline '' is empty"):
        load_spacy("")


def test_a_sam_directory_without_save_sams_files_is_refused_before_loading(tmp_path):
    # helper-126: a directory holding only a .pth passed the set-time check, and the next
    # configure failed on it; check_sam_spec reads no weights but looks for save_sam's files
    from ros_ground.sam import load_sam
    from ros_ground.sam.errors import SamLoadError
    from ros_ground.sam.load import check_sam_spec

    (tmp_path / "sam.pth").write_bytes(b"")
    with pytest.raises(SamLoadError) as checked:
        check_sam_spec(str(tmp_path))
    with pytest.raises(SamLoadError) as loaded:
        load_sam(str(tmp_path))
    assert str(checked.value) == str(loaded.value) == f"SAM weights not found: {tmp_path}/model.safetensors"
    assert check_sam_spec("sim") is not None  # the embedded model has them
