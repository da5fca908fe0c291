"""What a command asks of the robot: to act on its target, only to find or tell about it, or
neither, read from its words alone.

A robot client acts on `target` only when the command asks it to: "Where is the blue cube?"
and "Pick up the blue cube." ground the same phrase as the target, and a client forwarding its
user's words cannot tell them apart by `target` (helper-105's trial grasped the cube asked
about). The intent follows the rule that chose the target (command.target_rule):

- `act`: the target is the object of a verb that acts ("pick up", "grab", "hand me", "put",
  "push"), or the command, naming no target, says where to put what the robot holds ("put it
  on the tray": command_relations.held_destination);
- `locate`: the target is the object of a verb of looking or telling ("find", "show",
  "describe"), the subject asked about ("where is", "is there", "what colour is"), or a bare
  phrase ("the red mug, please"), which names a thing and no deed: the robot should ask;
- `none`: no target and nothing to put ("Describe the scene.", "How many mugs are there?",
  "Don't pick up the mug.").

The intent is the words', whatever the image holds: a command whose target is `absent` keeps
`act`, and the robot cannot act on it.
"""

from __future__ import annotations

from ros_ground.command import command_phrases, target_rule
from ros_ground.command_relations import held_destination

INTENTS = ("none", "locate", "act")  # GroundedResponse.INTENT_* are their indices


def command_intent(nlp, text: str) -> str:
    """One of INTENTS for the cleaned prompt `text` (the module docstring's rule)."""
    rule = target_rule(nlp, text)
    if rule is None:
        chunks, _ = command_phrases(nlp, text)
        return "act" if chunks and held_destination(text, chunks) is not None else "none"
    return "act" if rule == 0 else "locate"
