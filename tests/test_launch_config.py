"""Launch files, parameter files and the README agree with the nodes' declared parameters.

The launch files run against small stand-ins for `launch`/`launch_ros` that record what they
are asked to start (test_launch_real runs them under the real `ros2 launch`).
"""

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml

from ros_ground.nodes import params

ROOT = Path(__file__).resolve().parent.parent
TABLES = {"grounding_node": params.GROUNDING_PARAMS, "mask_proposal_node": params.PROPOSAL_PARAMS,
          "sim_camera_node": params.SIM_CAMERA_PARAMS}


def _entry_points() -> set[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            scripts = ast.literal_eval(node.value)["console_scripts"]
            return {s.split("=")[0].strip() for s in scripts}
    raise AssertionError("no entry_points in setup.py")


class _Context(dict):
    """launch's context: the launch arguments, as its launch_configurations are; `argv`, the
    command line's `name:=value` arguments."""

    argv: list = []

    @property
    def launch_configurations(self):
        return self


WARNINGS: list = []  # launch.logging's warnings in the stand-in


def _prefix_namespace(base, ns):  # launch_ros.utilities' rule, for the stand-in
    if base is None or ns.startswith("/"):
        return ns.rstrip("/")
    return f"{base.rstrip('/')}/{ns}".rstrip("/")


class _Config:
    def __init__(self, name, default=None):
        self.name, self.default = name, default

    def perform(self, context):
        return context[self.name]


def _condition(context, expression):
    """launch.conditions.evaluate_condition_expression's rule, on the stand-in's context."""
    value = "".join(sub.perform(context) for sub in expression).strip().lower()
    if value in ("true", "1", "false", "0"):
        return value in ("true", "1")
    raise ValueError(f"invalid condition expression {value!r}")


class _Record:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _Description(_Record):
    @property
    def entities(self):
        return self.args[0]


@pytest.fixture
def fake_launch(monkeypatch):
    modules = {
        "launch": dict(LaunchDescription=_Description),
        "launch.actions": dict(DeclareLaunchArgument=_Record, OpaqueFunction=_Record,
                               IncludeLaunchDescription=_Record, LogInfo=_Record, Shutdown=_Record),
        "launch.substitutions": dict(LaunchConfiguration=_Config),
        "launch.logging": dict(get_logger=lambda name: types.SimpleNamespace(warning=WARNINGS.append)),
        "launch.conditions": dict(evaluate_condition_expression=_condition),
        "launch.launch_description_sources": dict(PythonLaunchDescriptionSource=_Record),
        "launch_ros": {},
        "launch_ros.actions": dict(Node=_Record),
        "launch_ros.utilities": dict(prefix_namespace=_prefix_namespace,
                                     make_namespace_absolute=lambda ns: "/" + ns.lstrip("/")),
        "ament_index_python.packages": dict(get_package_share_directory=lambda pkg: str(ROOT)),
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def _arguments(description) -> dict:
    return _Context({e.kwargs.get("name", e.args[0] if e.args else None): e.kwargs["default_value"]
                     for e in description.entities if "default_value" in e.kwargs})


@pytest.mark.parametrize("composed,proposals", [("true", "true"), ("false", "true"),
                                                ("false", "false")])
def test_ground_launch_starts_real_executables(fake_launch, composed, proposals):
    description = _load(ROOT / "launch" / "ground.launch.py")
    context = _arguments(description)
    context.update(composed=composed, use_proposals=proposals, model="/models/llava")
    opaque = next(e for e in description.entities if e.kwargs.get("function"))
    nodes = opaque.kwargs["function"](context)
    executables = {n.kwargs["executable"] for n in nodes}
    assert executables <= _entry_points()
    if composed == "true":
        assert executables == {"ground_container"}
    else:
        assert "grounding_node" in executables
        assert ("mask_proposal_node" in executables) == (proposals == "true")
    for node in nodes:
        params_file, overrides = node.kwargs["parameters"]
        assert Path(params_file).is_file()
        assert Path(params_file).name == "default.yaml"
        # the container hosts several nodes: a process-wide `name=` would rename them all
        assert "name" not in node.kwargs or composed == "false"
        table = {p.name for p in TABLES.get(node.kwargs.get("name"), params.GROUNDING_PARAMS)}
        assert set(overrides) <= table | {"use_sim_time"}  # every node has use_sim_time
        assert overrides["use_sim_time"] is False
        assert node.kwargs["remappings"] == [("image", "/camera/image_raw")]
        if node.kwargs["executable"] != "mask_proposal_node":
            assert overrides["model"] == "/models/llava"


def test_ground_launch_passes_use_sim_time_and_names_a_misspelt_argument(fake_launch, monkeypatch):
    """`use_sim_time:=true` reaches the nodes, and a misspelt `image_topic:=/my/cam` is named:
    launch ignores an argument no file declares, leaving the nodes on the wall clock and on
    /camera/image_raw without a word."""
    description = _load(ROOT / "launch" / "ground.launch.py")
    context = _arguments(description)
    context.update(composed="false", use_sim_time="true")
    context.argv = ["use_sim_time:=true", "image_topic:=/my/cam", "robot_name:=r2"]
    WARNINGS.clear()
    opaque = next(e for e in description.entities if e.kwargs.get("function"))
    monkeypatch.setattr(sys, "argv", ["ros2", "launch", "ros_ground", "robot.launch.py"])
    opaque.kwargs["function"](context)  # included by the robot's file: its arguments are its own
    assert WARNINGS == []
    monkeypatch.setattr(sys, "argv", ["ros2", "launch", "ros_ground", "ground.launch.py"])
    nodes = opaque.kwargs["function"](context)
    assert {n.kwargs["parameters"][1]["use_sim_time"] for n in nodes} == {True}
    assert len(WARNINGS) == 1 and "'image_topic'" in WARNINGS[0] and "'image'" in WARNINGS[0]
    context.update(use_sim_time="ture")
    with pytest.raises(ValueError, match="launch argument use_sim_time: got 'ture'"):
        opaque.kwargs["function"](context)


@pytest.mark.parametrize("composed", ["true", "false"])
def test_ground_launch_connects_a_depth_camera_and_rviz(fake_launch, composed):
    # README's 3-D section: a RealSense's registered depth and calibration, and rviz's points
    description = _load(ROOT / "launch" / "ground.launch.py")
    given = {"depth": "/camera/aligned_depth_to_color/image_raw",
             "camera_info": "/camera/color/camera_info", "clicked_point": "/clicked_point"}
    context = _Context({**_arguments(description), "composed": composed, "namespace": "ground", **given})
    opaque = next(e for e in description.entities if e.kwargs.get("function"))
    for node in opaque.kwargs["function"](context):
        assert node.kwargs["remappings"] == [("image", "/camera/image_raw"), *given.items()]
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| argument | default | meaning |", 1)[1].split("\n\n", 1)[0]
    assert all(f"`{name}`" in table for name in _arguments(description))  # each documented


@pytest.mark.parametrize("composed", ["true", "false"])
def test_ground_launch_passes_the_camera_list_to_both_nodes(fake_launch, composed):
    description = _load(ROOT / "launch" / "ground.launch.py")
    context = _Context({**_arguments(description), "composed": composed, "cameras": "[left, right]"})
    opaque = next(e for e in description.entities if e.kwargs.get("function"))
    nodes = opaque.kwargs["function"](context)
    assert all(n.kwargs["parameters"][1]["cameras"] == ["left", "right"] for n in nodes)
    context["cameras"] = ""  # empty: the params file decides
    nodes = opaque.kwargs["function"](context)
    assert all("cameras" not in n.kwargs["parameters"][1] for n in nodes)


def _ground_nodes(**given):
    description = _load(ROOT / "launch" / "ground.launch.py")
    context = _Context({**_arguments(description), **given})
    opaque = next(e for e in description.entities if e.kwargs.get("function"))
    return opaque.kwargs["function"](context)


STEREO = {"image": "{left: /stereo/left/image_rect, right: /stereo/right/image_rect}",
          "camera_info": "{left: /stereo/left/camera_info, right: /stereo/right/camera_info}",
          "depth": "{left: /stereo/left/depth}"}  # only left has depth: right keeps right/depth


@pytest.mark.parametrize("composed", ["true", "false"])
def test_ground_launch_gives_each_camera_its_topics_from_a_mapping(fake_launch, composed):
    # a robot with two drivers: each camera's own topic (what the nodes subscribe:
    # camera_watch.camera_topics) is remapped to its driver's
    nodes = _ground_nodes(composed=composed, namespace="mc", cameras="[left, right]", **STEREO)
    expected = [("left/image", "/stereo/left/image_rect"), ("right/image", "/stereo/right/image_rect"),
                ("left/depth", "/stereo/left/depth"),
                ("left/camera_info", "/stereo/left/camera_info"),
                ("right/camera_info", "/stereo/right/camera_info")]
    assert [n.kwargs["remappings"] for n in nodes] == [expected] * len(nodes)
    # one named camera takes one topic as its own; the default image is the unnamed camera's
    (node,) = _ground_nodes(cameras="[left]", image="/stereo/left/image_rect", depth="/d")
    assert node.kwargs["remappings"] == [("left/image", "/stereo/left/image_rect"), ("left/depth", "/d")]
    (node,) = _ground_nodes(cameras="[left, right]")
    assert node.kwargs["remappings"] == []


@pytest.mark.parametrize("given, said", [
    # helper-117's bring-up: the nodes read left/image and right/image, nothing /stereo
    ({"image": "/stereo/left/image_rect"},
     "launch argument image: one topic '/stereo/left/image_rect' for the 2 cameras ['left', 'right'], "
     "each of which reads its own (left/image, right/image): give each camera its topic as a "
     "mapping, image:=\"{left: /stereo/left/image_rect, right: ...}\""),
    ({"depth": "/stereo/depth"}, "launch argument depth: one topic '/stereo/depth' for the 2 cameras"),
    ({"camera_info": "/stereo/left/camera_info"}, "launch argument camera_info: one topic"),
    ({"image": "{left: /a, rihgt: /b, top: /c}"}, "launch argument image: no camera named 'rihgt', "
     "'top' (the cameras: ['left', 'right']"),
    ({"image": "{left: /a, right: /b"}, "launch argument image: '{left: /a, right: /b' is no YAML mapping"),
    ({"depth": "{left: /a, right: }"}, "launch argument depth: '{left: /a, right: }' must map each "
     "camera to a topic (no topic for 'right')"),
    ({"clicked_point": "{left: /a}"}, "launch argument clicked_point: one topic for all the cameras"),
    ({"image": "{left: /a, right: 5}"}, "launch argument image: the topic of camera 'right' '5' is no "
     "ROS topic name: Invalid topic name: topic name token must not start with a number"),
    # a list for several topics, a space: rcl would refuse the remapping once the node started,
    # and launch exit 0 with nothing running (helper-126)
    ({"cameras": "[left]", "image": "[/a, /b]"}, "launch argument image: the topic '[/a, /b]' is no "
     "ROS topic name"),
    ({"cameras": "[left]", "depth": "/a b"}, "launch argument depth: the topic '/a b' is no ROS topic"),
    # YAML keeps the last of a key given twice: /a would be dropped without a word
    ({"image": "{left: /a, right: /b, left: /c}"}, "launch argument image: '{left: /a, right: /b, "
     "left: /c}' is no YAML mapping of camera to topic, e.g. \"{left: /stereo/left/image, right: "
     "/stereo/right/image}\" (camera 'left' given twice)"),
    # aliases, as in params files: nested aliases grow to gigabytes once walked
    ({"cameras": "[&a [x, x], [*a, *a]]"}, "launch argument cameras: '[&a [x, x], [*a, *a]]' is no "
     "YAML list of names, e.g. \"[left, right]\" (alias *a: YAML aliases are refused"),
    ({"image": "{left: &t /a, right: *t}"}, "launch argument image: '{left: &t /a, right: *t}' is no "
     "YAML mapping of camera to topic, e.g. \"{left: /stereo/left/image, right: /stereo/right/image}\" "
     "(alias *t: YAML aliases are refused"),
])
def test_ground_launch_refuses_camera_topics_the_nodes_would_ignore(fake_launch, given, said):
    with pytest.raises(ValueError) as raised:
        _ground_nodes(**{"cameras": "[left, right]", **given})
    assert said in str(raised.value)


def test_ground_launch_refuses_a_params_file_giving_the_two_nodes_other_cameras(fake_launch, tmp_path):
    # helper-126: cameras under grounding_node only left the proposal node on the one unnamed
    # camera's `image`, which nothing published: no proposals, and nothing said
    robot = tmp_path / "robot.yaml"
    robot.write_text(yaml.safe_dump(
        {"/**/grounding_node": {"ros__parameters": {"cameras": ["left", "right"]}}}))
    with pytest.raises(ValueError, match=r"params_file gives grounding_node the cameras \['left', 'right'\] "
                       r"and mask_proposal_node \[''\]: give both the same"):
        _ground_nodes(params_file=str(robot))
    (node,) = _ground_nodes(params_file=str(robot), use_proposals="false")  # no proposals to miss
    (node,) = _ground_nodes(params_file=str(robot), cameras="[left, right]")  # both told by launch
    assert node.kwargs["parameters"][1]["cameras"] == ["left", "right"]


def test_ground_launch_fails_when_a_model_process_dies(fake_launch):
    # a model process ended by an error (its remappings refused, a crash) ends the launch with
    # an error, as sim.launch.py's camera does, rather than `ros2 launch` exiting 0 with nothing
    from types import SimpleNamespace

    (node,) = _ground_nodes()
    stop = node.kwargs["on_exit"]
    died = SimpleNamespace(returncode=2, action=SimpleNamespace(name="ground_container-1"))
    with pytest.raises(RuntimeError, match="ground_container-1 exited with code 2"):
        stop(died, SimpleNamespace(is_shutdown=False))
    assert stop(died, SimpleNamespace(is_shutdown=True)) is None  # launch stopping it: its own end
    assert stop(SimpleNamespace(returncode=0, action=died.action), SimpleNamespace(is_shutdown=False)) is None


def test_ground_launch_reads_camera_names_as_names(fake_launch):
    # YAML 1.1 reads yes / no / on / off as booleans: cameras named so stay those names, in
    # cameras:= and in a mapping's keys alike
    (node,) = _ground_nodes(cameras="[yes, no]", image="{yes: /a, no: /b}")
    assert node.kwargs["parameters"][1]["cameras"] == ["yes", "no"]
    assert node.kwargs["remappings"] == [("yes/image", "/a"), ("no/image", "/b")]


def test_ground_launch_checks_a_mapping_against_the_params_files_cameras(fake_launch, tmp_path):
    # without cameras:=, the cameras are the params file's: a mapping never sets them (it would
    # drop a camera it leaves out), and a plain topic they would ignore is refused as well
    with pytest.raises(ValueError, match=r"image: no camera named 'left', 'right' \(the cameras: "
                       r"\[''\]; name them with cameras:="):
        _ground_nodes(image=STEREO["image"])  # config/default.yaml: the one unnamed camera
    robot = tmp_path / "robot.yaml"
    robot.write_text(yaml.safe_dump({f"/**/{node}": {"ros__parameters": {"cameras": ["left", "right"]}}
                                     for node in ("grounding_node", "mask_proposal_node")}))
    (node,) = _ground_nodes(params_file=str(robot), image=STEREO["image"])
    assert node.kwargs["remappings"] == [("left/image", "/stereo/left/image_rect"),
                                         ("right/image", "/stereo/right/image_rect")]
    assert "cameras" not in node.kwargs["parameters"][1]
    with pytest.raises(ValueError, match="launch argument image: one topic '/stereo/left/image_rect' "
                       "for the 2 cameras"):
        _ground_nodes(params_file=str(robot), image="/stereo/left/image_rect")
    # the unnamed camera keeps its single topic and may be named '' in a mapping
    (node,) = _ground_nodes(image="{'': /cam/image}", depth="/cam/depth")
    assert node.kwargs["remappings"] == [("image", "/cam/image"), ("depth", "/cam/depth")]
    # a params file's cameras that are no list of names are the node's to refuse at configure:
    # launch neither reads 'left' as the cameras l, e, f, t nor fails on [left, 5] with a traceback
    for bad in ("left", ["left", 5]):
        robot.write_text(yaml.safe_dump({"/**/grounding_node": {"ros__parameters": {"cameras": bad}}}))
        (node,) = _ground_nodes(params_file=str(robot), image="{left: /stereo/left/image_rect}")
        assert node.kwargs["remappings"] == [("left/image", "/stereo/left/image_rect")]


def test_sim_launch(fake_launch):
    description = _load(ROOT / "launch" / "sim.launch.py")
    args = _arguments(description)
    assert Path(args["params_file"]).name == "sim.yaml" and Path(args["params_file"]).is_file()
    context = _arguments(description)
    context["namespace"] = "sim"
    opaque = next(e for e in description.entities if e.kwargs.get("function"))
    (camera,) = opaque.kwargs["function"](context)
    assert camera.kwargs["executable"] == "sim_camera_node"
    # no seed given: the params file's (config/sim.yaml's, or the robot's own) is kept
    assert camera.kwargs["parameters"][1] == {}
    context["seed"] = "7"
    (seeded,) = opaque.kwargs["function"](context)
    assert seeded.kwargs["parameters"][1]["seed"].perform(context) == "7"
    assert camera.kwargs["executable"] in _entry_points()
    include = next(e for e in description.entities if type(e) is _Record and e.args
                   and type(e.args[0]) is _Record)
    included = Path(include.args[0].args[0])
    assert included.is_file() and included.name == "ground.launch.py"
    passed = dict(include.kwargs["launch_arguments"])
    ground_args = _arguments(_load(included))
    assert set(passed) <= set(ground_args)
    # a camera that fails ends the launch; one stopped with the rest (or ending well) does not
    stop = camera.kwargs["on_exit"]
    with pytest.raises(RuntimeError, match="sim_camera_node exited with code 1"):
        stop(types.SimpleNamespace(returncode=1), types.SimpleNamespace(is_shutdown=False))
    assert stop(types.SimpleNamespace(returncode=-2), types.SimpleNamespace(is_shutdown=True)) is None
    assert stop(types.SimpleNamespace(returncode=0), types.SimpleNamespace(is_shutdown=False)) is None


@pytest.mark.parametrize("name", ["default.yaml", "sim.yaml"])
def test_params_files_name_declared_parameters_with_matching_types(name):
    data = yaml.safe_load((ROOT / "config" / name).read_text())
    assert data
    for key, section in data.items():
        node = key.split("/")[-1]
        declared = {p.name: p.default for p in TABLES[node]}
        for param, value in section["ros__parameters"].items():
            assert param in declared, f"{name}: {node} has no parameter {param!r}"
            default = declared[param]
            assert type(value) is type(default) or (
                isinstance(default, float) and isinstance(value, int)
            ), f"{name}: {node}.{param} = {value!r} but the declared default is {default!r}"


def test_readme_parameter_tables_match_the_code():
    sys.path.insert(0, str(ROOT / "scripts"))
    from param_table import render

    readme = (ROOT / "README.md").read_text()
    assert render() in readme, "README parameter tables are stale: run scripts/param_table.py"


def test_rviz_config_shows_the_overlay():
    rviz = yaml.safe_load((ROOT / "config" / "ground.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    topics = [d.get("Topic", {}).get("Value") for d in displays if d["Class"] == "rviz_default_plugins/Image"]
    assert any(t and t.endswith("overlay") for t in topics)
    # the sim graph's namespace throughout: a click reaches grounding_node's clicked_point
    namespaced = [*topics, *(t["Topic"]["Value"] for t in rviz["Visualization Manager"]["Tools"]
                             if t["Class"] == "rviz_default_plugins/PublishPoint")]
    assert len(namespaced) == 3 and all(t.startswith("/sim/") for t in namespaced), namespaced
    assert "/sim/clicked_point" in namespaced


def test_rviz_config_looks_at_the_sim_scene_and_names_its_topics():
    import math

    from ros_ground import settings

    manager = yaml.safe_load((ROOT / "config" / "ground.rviz").read_text())["Visualization Manager"]
    readme = (ROOT / "README.md").read_text()
    topics = []
    for display in manager["Displays"]:
        assert display["Class"].startswith("rviz_default_plugins/"), display["Class"]
        topics += [display["Topic"]["Value"]] if "Topic" in display else []
        topics += [display[key] for key in ("Depth Map Topic", "Color Image Topic") if key in display]
    # each a topic of the sim graph that README's node table names
    assert all(t.startswith("/sim/") and f"`{t.removeprefix('/sim/')}`" in readme for t in topics), topics
    # the 3-D scene a Publish Point click lands on: depth coloured by the image, selectable
    cloud = next(d for d in manager["Displays"] if d["Class"] == "rviz_default_plugins/DepthCloud")
    assert (cloud["Depth Map Topic"], cloud["Color Image Topic"], cloud["Selectable"]) == (
        "/sim/depth", "/sim/image_raw", True)
    frame_id = next(spec.default for spec in settings.SIM_CAMERA if spec.name == "frame_id")
    assert manager["Global Options"]["Fixed Frame"] == frame_id
    # the view, placed by rviz's Orbit (OrbitViewController::updateCamera; yaw axis z), looks
    # along the optical frame's +z at the objects (0.5-0.8 m ahead) with optical up (-y) up
    view = manager["Views"]["Current"]
    assert view["Class"] == "rviz_default_plugins/Orbit"
    focal = [view["Focal Point"][axis] for axis in "XYZ"]
    yaw, pitch, distance = view["Yaw"], view["Pitch"], view["Distance"]
    position = [focal[0] + distance * math.cos(yaw) * math.cos(pitch),
                focal[1] + distance * math.sin(yaw) * math.cos(pitch), focal[2] + distance * math.sin(pitch)]
    look = [(f - p) / distance for f, p in zip(focal, position)]
    up = [-look[2] * v for v in look]
    up[2] += 1.0  # the yaw axis z, less its part along the view
    assert 0.5 <= focal[2] <= 0.8 and look[2] > 0.9 and position[2] < 0
    assert up[1] < 0 and abs(up[0]) < 1e-3 * abs(up[1])


@pytest.mark.parametrize("composed", ["true", "false"])
def test_a_sam_model_given_at_launch_drops_the_params_files_checkpoint(fake_launch, composed):
    # config/default.yaml's ViT-H checkpoint must not reach `sam_model:=sim` (a saved model
    # carries its weights, and configure refuses both); an explicit checkpoint still does
    description = _load(ROOT / "launch" / "ground.launch.py")
    context = _Context({**_arguments(description), "composed": composed, "sam_model": "sim"})
    opaque = next(e for e in description.entities if e.kwargs.get("function"))
    for node in opaque.kwargs["function"](context):
        assert node.kwargs["parameters"][1]["sam_checkpoint"] == ""
    context.update(sam_model="vit_b", sam_checkpoint="/w/sam_vit_b.pth")
    for node in opaque.kwargs["function"](context):
        assert node.kwargs["parameters"][1]["sam_checkpoint"] == "/w/sam_vit_b.pth"
    context.update(sam_model="", sam_checkpoint="")
    for node in opaque.kwargs["function"](context):
        assert "sam_checkpoint" not in node.kwargs["parameters"][1]


def test_ground_launch_arguments_agree_with_the_readme_and_name_every_model(fake_launch):
    # --show-args is what a user reads before launching: the model arguments name the embedded
    # models the README's recipes launch with (model:=sim sam_model:=sim), and an empty default
    # is "empty" in the README's table as it is there
    import re

    description = _load(ROOT / "launch" / "ground.launch.py")
    declared = {e.args[0]: e.kwargs for e in description.entities if e.args
                and "default_value" in e.kwargs}
    for name in ("model", "sam_model"):
        assert "sim" in declared[name]["description"] and "tiny" in declared[name]["description"], name
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| argument | default | meaning |"):]
    table = table[:table.index("\n\n")]
    for names, default in re.findall(r"^\| ((?:`\w+`(?:, )?)+) \| ([^|]+) \|", table, re.M):
        for name in re.findall(r"`(\w+)`", names):
            empty = declared[name]["default_value"] == ""
            assert default.startswith("empty") == empty, (name, default, declared[name]["default_value"])
