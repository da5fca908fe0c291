"""intent.py: what a command's words ask of the robot, the text alone (no model).

tests/data/intent_commands.yaml holds commands written to break it, each with what a person
means; `read_wrong` marks the ones intent.py still reads otherwise (strict: a mark that no
longer holds fails, so `python tests/test_intent.py` rewrites the marks after a change)."""

from pathlib import Path

import pytest
import yaml

from ros_ground.command.intent import INTENTS, command_intent
from ros_ground.phrases import load_spacy

DATA = Path(__file__).parent / "data" / "intent_commands.yaml"
CASES = yaml.safe_load(DATA.read_text())
SAID = {
    "act": ["Pick up the blue cube.", "Hand me the red mug.", "Can you grab the duck?", "Give me the mug",
            "Put it on the tray.", "Put the mug left of the tray.", "Bring the mug to the tray.",
            "push the cube left", "Pick up the unicorn.", "Find the duck, then pick up the cube.",
            "Pick up the cube, not the mug.", "Find the mug and pick it up.", "Grab the cube please.",
            "I want you to pick up the mug.", "PICK UP THE MUG", "Would you mind picking up the mug?",
            "Pick up the red mug, no wait, the blue one.", "pick up the red mug, I mean the blue one",
            "Pick up the mug farthest from the camera.", "Pick up the mug next to the tray.",
            "pickup the red mug",  # one word, as people type it (helper-113)
            # helper-116: of a placed object a negated relation says where not to put it
            "Put the mug in the box, not on the tray.",
            "Place the cube next to the mug, not next to the ball.",
            "Move the mug a bit further from the tray.", "Put these two next to the mug.",
            "pick up the duck on second thought grab the mug instead"],
    "locate": ["Where is the blue cube?", "Find the duck.", "Describe the mug.", "Show me the cube.",
               "Is there a mug on the table?", "What colour is the mug?", "Do you see the mug?",
               "the red mug, please", "Did you pick up the mug?", "Should I pick up the mug?",
               "How would you pick up the mug?", "I'll grab the mug myself.", "Detect the mug.",
               "Pick up the red mug, no, where is the blue one?",
               # helper-113: a relation no reading honours, so the target would be any mug
               "Pick up the mug that is not next to the tray.", "pick up the mug that isn't beside the tray",
               "Pick up the mug other than the one next to the tray.",
               "Pick up the mug farthest from the tray.", "grab the mug, not the one by the tray",
               # helper-116: a request taken back before a statement or a question
               "Pick up the mug. Never mind, John will do it.",
               "Pick up the mug. Never mind, where is the ball?",
               "Pick up the mug. Change of plans, the tray is full.",
               "Pick up the mug. Never mind, Sara will grab the ball."],
    "none": ["Describe the scene.", "How many objects are there?", "Don't pick up the mug.",
             "What is left of the tray?", "", "I don't want you to touch the knife.",
             "Under no circumstances pick up the knife.", "Pick up the mug. Actually, don't.",
             "Stop grabbing the mug.", "Don't pick up the red mug, the blue one.",
             "Pick up the mug. Change of plans: go home."],
}


@pytest.fixture(scope="module")
def nlp():
    return load_spacy()


@pytest.mark.parametrize("intent, text", [(i, t) for i, texts in SAID.items() for t in texts])
def test_command_intent(nlp, intent, text):
    assert command_intent(nlp, text) == intent


@pytest.mark.parametrize("case", CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_the_commands_written_to_break_it(nlp, case):
    got = command_intent(nlp, case["say"])
    assert got == case.get("read_wrong", case["intent"]), case
    assert case["intent"] == "act" or got != "act", f"a robot would act on {case['say']!r}"


def test_the_message_constants_are_the_intents_indices():
    msgs = pytest.importorskip("ros_ground_msgs.msg")
    R = msgs.GroundedResponse
    constants = [R.INTENT_NONE, R.INTENT_LOCATE, R.INTENT_ACT]
    assert constants == [INTENTS.index(i) for i in ("none", "locate", "act")]


if __name__ == "__main__":  # rewrite the read_wrong marks after a change to intent.py
    model, lines, wrong = load_spacy(), DATA.read_text().splitlines(keepends=True), 0
    header = "".join(line for line in lines if line.startswith("#"))
    for case in CASES:
        got = command_intent(model, case["say"])
        case.pop("read_wrong", None)
        if got != case["intent"]:
            case["read_wrong"], wrong = got, wrong + 1
    DATA.write_text(header + yaml.safe_dump(CASES, sort_keys=False, allow_unicode=True, width=200))
    print(f"{wrong} of {len(CASES)} read wrong")
