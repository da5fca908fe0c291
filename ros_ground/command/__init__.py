"""Instruction following: what a command asks, which object it means, and grounding that object
among the frame's proposals. The text alone but for `grounding`, `refer`, `between`, `extremes`
and `colour_words`' pixel checks.

Modules, one job each:

- `parse`: the command's own noun phrases, cut into pieces at its spatial words, and its target;
- `piece_phrases`: the noun phrases of one piece;
- `conjoined`: the other objects joined to the target by "and";
- `corrections`: the words of a spoken self-correction ("no wait", "I mean");
- `intent`: whether the command asks the robot to act on its target, only to find it, or neither;
- `relations`: the target's landmark and, for a placed object, its destination;
- `fronted`: a relation or side said before the object ("left of the tray, pick up the mug");
- `spatial_words`: relations, superlatives and ordinals as words;
- `colour_words`: colour words, and how much of a mask looks each one;
- `phrase_reading`: which of a phrase's words the model can read, and whether it names a kind;
- `refer`: the target and its landmark among the proposals, from the command's words;
- `between`: "between" two landmarks;
- `extremes`: the objects a superlative or ordinal compares, and the one it picks;
- `grounding`: `ground_command`, the command's phrases grounded in the image (the engine calls it).
"""
