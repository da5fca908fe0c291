"""intent.py: what a command's words ask of the robot, the text alone (no model)."""

import pytest

from ros_ground.intent import INTENTS, command_intent
from ros_ground.phrases import load_spacy

CASES = {
    "act": ["Pick up the blue cube.", "Hand me the red mug.", "Can you grab the duck?", "Give me the mug",
            "Put it on the tray.", "Put the mug left of the tray.", "Bring the mug to the tray.",
            "push the cube left", "Pick up the unicorn.", "Find the duck, then pick up the cube.",
            "Pick up the cube, not the mug."],
    "locate": ["Where is the blue cube?", "Find the duck.", "Describe the mug.", "Show me the cube.",
               "Is there a mug on the table?", "What colour is the mug?", "Do you see the mug?",
               "the red mug, please"],
    "none": ["Describe the scene.", "How many objects are there?", "Don't pick up the mug.",
             "What is left of the tray?", ""],
}


@pytest.fixture(scope="module")
def nlp():
    return load_spacy()


@pytest.mark.parametrize("intent, text", [(i, t) for i, texts in CASES.items() for t in texts])
def test_command_intent(nlp, intent, text):
    assert command_intent(nlp, text) == intent


def test_the_message_constants_are_the_intents_indices():
    msgs = pytest.importorskip("ros_ground_msgs.msg")
    R = msgs.GroundedResponse
    constants = [R.INTENT_NONE, R.INTENT_LOCATE, R.INTENT_ACT]
    assert constants == [INTENTS.index(i) for i in ("none", "locate", "act")]
