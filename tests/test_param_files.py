"""param_files.py: which sections of a ROS 2 parameter file apply to a node, as rcl matches them."""

import pytest
import yaml

from ros_ground.param_files import applies, sections, unmatched


@pytest.mark.parametrize("section, node, hit", [
    ("/**", "/ground/grounding_node", True),
    ("/**/grounding_node", "/grounding_node", True),        # ** is zero tokens too
    ("/**/grounding_node", "/a/b/grounding_node", True),
    ("/ground/grounding_node", "/ground/grounding_node", True),
    ("/robot/grounding_node", "/ground/grounding_node", False),
    ("/grounding_node", "/ground/grounding_node", False),   # a bare name is the root namespace's
    ("/*/grounding_node", "/ground/grounding_node", True),
    ("/*/grounding_node", "/a/b/grounding_node", False),    # * is one token
    ("/**/mask_proposal_node", "/ground/grounding_node", False),
    ("/ground/*", "/ground/grounding_node", True),
    ("/ground_node", "/ground/grounding_node", False),      # no partial matches
])
def test_a_section_applies_as_rcl_matches_it(section, node, hit):
    assert applies(section, node) is hit


def test_sections_join_nested_namespaces_and_lead_with_a_slash():
    content = {"grounding_node": {"ros__parameters": {}},
               "ground": {"left": {"grounding_node": {"ros__parameters": {}}}},
               "/**": {"ros__parameters": {}}}
    assert sections(content) == ["/grounding_node", "/ground/left/grounding_node", "/**"]


def test_a_file_for_another_namespace_is_named_with_its_sections(tmp_path):
    # /robot/grounding_node in a file launched with namespace:=ground sets nothing: named, or
    # the node would run the embedded sim model in place of the robot's without a word
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump({"/robot/grounding_node": {"ros__parameters": {"model": "x"}}}))
    why = unmatched(str(path), ["/ground/grounding_node", "/ground/mask_proposal_node"])
    assert why.startswith(f"parameter file {path} has no section for /ground/grounding_node "
                          "(its sections: /robot/grounding_node)")
    assert unmatched(str(path), ["/ground/mask_proposal_node"]).startswith(  # none at all
        f"parameter file {path} has no section for /ground/mask_proposal_node")
    assert "/**/grounding_node: ros__parameters:" in why
    assert unmatched(str(path), ["/robot/grounding_node"]) is None
    # a wildcard section of other values does not hide it
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"use_sim_time": True}},
                                    "/robot/grounding_node": {"ros__parameters": {"model": "x"}}}))
    assert unmatched(str(path), ["/ground/grounding_node"]).startswith(
        f"parameter file {path} has no section for /ground/grounding_node (its sections: /**, "
        "/robot/grounding_node)")
    assert unmatched(str(path), ["/ground/mask_proposal_node"]) is None  # "/**" is for it
    assert unmatched(str(path), ["/robot/grounding_node", "/robot/mask_proposal_node"]) is None
    assert "YAML error at line" in unmatched(_written(tmp_path, "a: [b"), ["/x"])
    assert "none.yaml: no such file" in unmatched(str(tmp_path / "none.yaml"), ["/x"])


def _written(tmp_path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return str(path)


def _launch_ros_params_file(params: dict, name: str | None, namespace: str) -> str:
    """The temporary params file launch_ros's Node writes for `parameters=[params]`, by its own
    code: evaluate_parameters makes a list a tuple, yaml.dump writes it `!!python/tuple`."""
    from launch_ros.actions import Node
    from launch_ros.utilities import evaluate_parameters, normalize_parameters

    from launch import LaunchContext

    context = LaunchContext()
    node = Node(package="ros_ground", executable="grounding_node", name=name, namespace=namespace)
    node._perform_substitutions(context)
    evaluated = evaluate_parameters(context, normalize_parameters([params]))
    return node._create_params_file_from_dict(evaluated[0])


@pytest.mark.parametrize("name", ["grounding_node", None])  # None: composed, written as /**
def test_a_params_file_written_by_launch_ros_is_read_with_its_lists(name):
    # launch_ros writes a list argument ('cameras:=[left, right]') as a python/tuple YAML tag,
    # which rcl applies: the file is read with its lists and its sections checked, never
    # refused as "not YAML"
    import os

    from ros_ground.param_files import load, params_file
    from ros_ground.settings import GROUNDING

    path = _launch_ros_params_file({"cameras": ["left", "right"], "depth_tolerance_s": 0.1},
                                   name, "ground")
    try:
        assert "!!python/tuple" in open(path).read()
        assert unmatched(path, ["/ground/grounding_node"]) is None
        assert params_file(path, "grounding_node", GROUNDING)["cameras"] == ["left", "right"]
        section = "/ground/grounding_node" if name else "/**"
        assert load(path)[section]["ros__parameters"]["cameras"] == ["left", "right"]
    finally:
        os.unlink(path)


def test_a_params_file_builds_no_python_objects(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("/**:\n  ros__parameters:\n    x: !!python/object/apply:os.getcwd []\n")
    why = unmatched(str(path), ["/grounding_node"])
    assert "YAML error" in why and "python/object/apply" in why


@pytest.mark.parametrize("content,words", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "bad.yaml: not a YAML text file (not UTF-8 text)"),
    (b"a: [b\n", "bad.yaml: YAML error at line 2 column 1: expected ',' or ']', but got '<stream end>'"),
    (b"a:\n  b: 1\n c: 2\n", "bad.yaml: YAML error at line 3 column 2: "),
    (None, "none.yaml: no such file"),
    ("dir", "is a directory, not a YAML file"),
])
def test_a_file_that_is_no_yaml_text_is_named_in_one_line(tmp_path, content, words):
    from ros_ground.param_files import load

    path = tmp_path / ("none.yaml" if content is None else "bad.yaml")
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises((OSError, ValueError)) as raised:
        load(str(path))
    message = str(raised.value)
    assert "\n" not in message and str(path) in message and words in message, message


@pytest.mark.parametrize("content,words", [
    ("/**:\n  ros__parameters:\n    a: &a [lol, lol]\n    b: [*a, *a]\n", "line 4 column 9: alias *a: "),
    ("/**:\n  ros__parameters:\n    a: *a\n", "line 3 column 8: alias *a: "),
])
def test_a_params_file_with_yaml_aliases_is_refused_in_one_line(tmp_path, content, words):
    # a "billion laughs" file (nested aliases) grew past 5 GB in params_file before rcl, which
    # refuses aliases itself, ever read it (trial132 D6)
    from ros_ground.param_files import load, params_file
    from ros_ground.settings import GROUNDING

    path = tmp_path / "laughs.yaml"
    path.write_text(content)
    for read in (lambda: load(str(path)), lambda: params_file(str(path), "grounding_node", GROUNDING)):
        with pytest.raises(ValueError) as raised:
            read()
        message = str(raised.value)
        assert "\n" not in message and message.startswith(f"{path}: YAML error at ") and words in message
        assert "aliases are refused" in message, message


@pytest.mark.parametrize("content,words", [
    ("/**:\n  ros__parameters:\n    <<: {max_new_tokens: 7}\n", "line 3 column 5: merge key <<: "),
    ("/**:\n  ros__parameters:\n    a: 1\n    <<: [{b: 2}, {c: 3}]\n", "line 4 column 5: merge key <<: "),
    ("/**:\n  ros__parameters:\n    cams:\n      <<: {left: /a}\n", "line 4 column 7: merge key <<: "),
])
def test_a_params_file_with_a_yaml_merge_key_is_refused_in_one_line(tmp_path, content, words):
    # trial137 D6: safe_load merged `<<: {max_new_tokens: 7}` into max_new_tokens 7, while rcl
    # gave the node a parameter literally named `<<.max_new_tokens` and it ran on its default
    from ros_ground.param_files import load, params_file, unknown_names, unmatched
    from ros_ground.settings import GROUNDING

    path = tmp_path / "merge.yaml"
    path.write_text(content)
    messages = [unmatched(str(path), ["/grounding_node"])]  # the launch pre-check says why
    for read in (lambda: load(str(path)), lambda: params_file(str(path), "grounding_node", GROUNDING),
                 lambda: unknown_names(str(path))):
        with pytest.raises(ValueError) as raised:
            read()
        messages.append(str(raised.value))
    for message in messages:
        assert "\n" not in message and message.startswith(f"{path}: YAML error at ") and words in message
        assert "ROS does not merge them" in message, message
    path.write_text("/**:\n  ros__parameters:\n    '<<': 1\n    a: '<<'\n")  # quoted: a plain name
    assert load(str(path)) == {"/**": {"ros__parameters": {"<<": 1, "a": "<<"}}}


def test_an_anchor_alone_is_read_as_rcl_reads_it(tmp_path):
    from ros_ground.param_files import load

    path = tmp_path / "anchor.yaml"
    path.write_text("/**:\n  ros__parameters:\n    model: &m sim\n")
    assert load(str(path))["/**"]["ros__parameters"]["model"] == "sim"
