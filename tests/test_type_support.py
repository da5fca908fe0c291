"""A message's Python class and the C type support loaded for it must come from one msg/: a
workspace built from another msg/ than the venv's fails every publish, found at configure."""

import pytest

pytest.importorskip("rclpy")
from ros_ground_msgs.action import Ground  # noqa: E402
from ros_ground_msgs.msg import GroundedResponse  # noqa: E402
from rosidl_parser.definition import UnboundedString  # noqa: E402

from ros_ground.nodes.common import check_type_support  # noqa: E402

pytestmark = pytest.mark.ros


class OlderClass(GroundedResponse):
    """A Python class built from a msg/ without second_landmark, which the C side reads."""

    __slots__ = ()

    def __getattribute__(self, name):
        if name == "second_landmark":
            raise AttributeError(f"'GroundedResponse' object has no attribute {name!r}")
        return super().__getattribute__(name)


class NewerClass(GroundedResponse):
    """A Python class built from a msg/ with a field the C side does not know."""

    __slots__ = ("_extra",)
    SLOT_TYPES = GroundedResponse.SLOT_TYPES + (UnboundedString(),)

    def __init__(self):
        super().__init__()
        self._extra = ""

    @classmethod
    def get_fields_and_field_types(cls):
        return {**GroundedResponse.get_fields_and_field_types(), "extra": "string"}

    @property
    def extra(self):
        return self._extra

    @extra.setter
    def extra(self, value):
        self._extra = value


# the C converter asserts the message's class is the one it was generated for
for twin in (OlderClass, NewerClass):
    twin.__name__, twin.__module__ = GroundedResponse.__name__, GroundedResponse.__module__


def test_the_installed_messages_agree_with_their_type_support():
    check_type_support(GroundedResponse)
    check_type_support(Ground.Result)


def test_a_field_the_python_class_lacks_is_one_clear_error_naming_both_installs():
    with pytest.raises(RuntimeError) as caught:
        check_type_support(OlderClass)
    text = str(caught.value)
    assert "Python class (from " in text and "C type support (from " in text
    assert "AttributeError" in text and "second_landmark" in text
    assert "rebuild both (make msgs" in text


def test_a_field_the_c_side_lacks_is_found_too():
    with pytest.raises(RuntimeError, match=r"field\(s\) extra do not survive serialisation"):
        check_type_support(NewerClass)


def test_configure_refuses_a_mismatch_before_loading_the_models(monkeypatch):
    """A mismatch fails configure at once: loading real weights first takes minutes."""
    from rclpy.parameter import Parameter

    from ros_ground.nodes import grounding_node

    loaded = []
    monkeypatch.setattr(grounding_node, "GroundedResponse", OlderClass)
    monkeypatch.setattr(grounding_node, "check_model_specs", lambda *a, **k: loaded.append("specs"))
    monkeypatch.setattr(grounding_node, "build_engine_from_settings", lambda *a, **k: loaded.append("models"))
    _load_refused(lambda: grounding_node.GroundingNode(namespace="/type_support", parameter_overrides=[
        Parameter("autostart", value=False), Parameter("model", value="tiny"),
        Parameter("sam_model", value="tiny")]), "second_landmark", loaded)


def _load_refused(make, field: str, loaded: list) -> None:
    """The node `make()` builds refuses its load naming `field`, having loaded nothing into `loaded`."""
    import rclpy

    rclpy.init()
    try:
        node = make()
        try:
            with pytest.raises(RuntimeError, match=field):
                node.load(node.values())
            assert loaded == []
        finally:
            node.shutdown_worker()
            node.destroy_node()
    finally:
        rclpy.try_shutdown()


def test_the_proposal_node_refuses_a_mismatch_before_loading_sam(monkeypatch):
    from rclpy.parameter import Parameter
    from ros_ground_msgs.msg import EntityProposals

    from ros_ground.nodes import mask_proposal_node

    class Twin(EntityProposals):  # a Python class built from a msg/ without `feature_source`
        __slots__ = ()

        def __getattribute__(self, name):
            if name == "feature_source":
                raise AttributeError(f"'EntityProposals' object has no attribute {name!r}")
            return super().__getattribute__(name)

    Twin.__name__, Twin.__module__ = EntityProposals.__name__, EntityProposals.__module__
    loaded = []
    monkeypatch.setattr(mask_proposal_node, "EntityProposals", Twin)
    _load_refused(lambda: mask_proposal_node.MaskProposalNode(
        sam_provider=lambda *a: loaded.append("sam"), namespace="/type_support",
        parameter_overrides=[Parameter("autostart", value=False), Parameter("sam_model", value="tiny")]),
        "feature_source", loaded)


def test_ask_says_the_mismatch_instead_of_waiting_for_a_server(monkeypatch, capsys):
    import argparse

    from ros_ground.nodes import ask

    monkeypatch.setattr(ask, "GroundedResponse", OlderClass)
    args = argparse.Namespace(prompt="Where is the mug?", namespace="", camera="", overlay="", json=False,
                              mode="", timeout=30.0)
    assert ask.run_ask(args) == 2
    assert "second_landmark" in capsys.readouterr().err
