"""`ros-ground ask`'s text: the answer and where its phrases are, in plain words (no node)."""

import re

import numpy as np
import pytest

pytest.importorskip("rclpy")
from ros_ground_msgs.msg import GroundedResponse  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros_ground.nodes import ask  # noqa: E402
from ros_ground.nodes.conversions import error_response, result_to_msg  # noqa: E402
from ros_ground.results import GroundedPhrase, GroundingResult  # noqa: E402


def _response() -> GroundedResponse:
    mask = np.zeros((30, 40), bool)
    mask[:10, :10] = True
    phrase = GroundedPhrase("the red mug", 4, 15, 0.87, mask, point=(5.0, 5.0))
    result = GroundingResult(text="See the red mug.", phrases=[phrase], model="tiny",
                             image_size=(30, 40), mode="point",
                             timing_ms={"generation": 900.0, "grounding": 400.0, "total": 1300.0})
    return result_to_msg(result, Header(), "1", "Where is the mug?")


def test_answer_and_phrases_in_plain_words(capsys):
    ask._print_response(_response())
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Answer: See the red mug."
    assert lines[1].startswith("  Answered in 1.3 s; 1 phrase found in the picture (masks cut ")
    assert lines[2] == '   - "the red mug": on the left, near the top; 100 pixels (8.3% of the picture)'
    assert not re.search(r"\[\d+:\d+\]|area=|score=|\dms", "\n".join(lines))


def test_a_streamed_answer_is_finished_not_repeated(capsys):
    ask._print_response(_response(), shown=len("See the"))
    assert capsys.readouterr().out.splitlines()[0] == " red mug."


def test_an_empty_answer_says_so(capsys):
    response = _response()
    response.text, response.phrases = "", []
    ask._print_response(response)
    assert capsys.readouterr().out.splitlines()[0] == "Answer: (none: the model generated no text)"


def test_no_answer_says_why(capsys):
    ask._print_response(error_response(GroundedResponse.STATUS_BAD_INPUT, "empty prompt", "1", ""))
    assert capsys.readouterr().out == "  No answer (BAD_INPUT): empty prompt\n"


def test_a_command_says_what_it_is_about_and_where(capsys):
    mask = np.zeros((30, 40), bool)
    mask[10:20, 20:30] = True
    target = GroundedPhrase("the red mug", 8, 19, 0.9, mask, point=(25.0, 15.0),
                            position=np.array([0.1, -0.02, 0.64]), depth_points=80)
    result = GroundingResult(text="no.", phrases=[], model="tiny", image_size=(30, 40),
                             mode="entities", timing_ms={"total": 300.0},
                             prompt="Pick up the red mug.", prompt_phrases=[target], target=0)
    ask._print_response(result_to_msg(result, Header(), "1", "Pick up the red mug."))
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  Answered in 0.3 s; no phrase of it was found in the picture."
    assert lines[2].startswith('  The command is about "the red mug": ')
    assert "box x=20 y=10 width=10 height=10" in lines[2]
    assert lines[2].endswith("at (0.100, -0.020, 0.640) m from the camera (right, down, forward)")


def test_a_target_without_a_position_says_why(capsys):
    mask = np.zeros((30, 40), bool)
    mask[10:20, 20:30] = True
    target = GroundedPhrase("the red mug", 8, 19, 0.9, mask)
    result = GroundingResult(text="no.", phrases=[], model="tiny", image_size=(30, 40),
                             mode="entities", prompt="Pick up the red mug.",
                             prompt_phrases=[target], target=0)
    response = result_to_msg(result, Header(), "1", "Pick up the red mug.")
    ask.print_phrases(response)
    assert capsys.readouterr().out.splitlines()[-1].endswith("; no depth under its mask")
    response.position_error = "camera_info is for 640x480, the depth and image are 40x30"
    ask.print_phrases(response)
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        "; no 3-D position: camera_info is for 640x480, the depth and image are 40x30")


def test_the_target_and_its_landmark_in_plain_words(capsys):
    from ros_ground.cli import format_result

    masks = [np.zeros((30, 40), bool) for _ in range(2)]
    masks[0][:10, :10] = True
    masks[1][:10, 20:30] = True
    prompt = "Put the red mug behind the tray."
    phrases = [GroundedPhrase("the red mug", 4, 15, 0.9, masks[0]),
               GroundedPhrase("the tray", 23, 31, 0.8, masks[1])]
    result = GroundingResult(text="Yes.", phrases=[], model="tiny", image_size=(30, 40),
                             mode="entities", prompt=prompt, prompt_phrases=phrases, target=0,
                             landmark=1, relation="behind", destination=True)
    ask.print_phrases(result_to_msg(result, Header(), "1", prompt))
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith('  The command is about "the red mug": on the left')
    assert lines[-1].startswith('  It goes behind "the tray": in the middle')
    text = format_result(result).splitlines()
    assert text[1].startswith("  target: 'the red mug'")
    assert text[2].startswith("  destination behind: 'the tray'")


def test_put_it_somewhere_says_where_what_the_robot_holds_goes(capsys):
    mask = np.zeros((30, 40), bool)
    mask[:10, 20:30] = True
    prompt = "Put it on the tray."
    result = GroundingResult(text="", phrases=[], model="tiny", image_size=(30, 40),
                             mode="entities", prompt=prompt,
                             prompt_phrases=[GroundedPhrase("the tray", 10, 18, 0.8, mask)],
                             target=-1, landmark=0, relation="on", destination=True)
    ask.print_phrases(result_to_msg(result, Header(), "1", prompt))
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == "  The command is about what the robot holds (target -1)."
    assert lines[-1].startswith('  It goes on "the tray": ')


def test_put_it_between_names_both_places(capsys):
    from ros_ground.cli import format_result

    masks = [np.zeros((30, 40), bool) for _ in range(2)]
    masks[0][:10, :10] = True
    masks[1][:10, 30:] = True
    prompt = "Put it between the mug and the tray."
    result = GroundingResult(text="", phrases=[], model="tiny", image_size=(30, 40),
                             mode="entities", prompt=prompt,
                             prompt_phrases=[GroundedPhrase("the mug", 15, 22, 0.8, masks[0]),
                                             GroundedPhrase("the tray", 27, 35, 0.8, masks[1])],
                             target=-1, landmark=0, relation="between", destination=True,
                             second_landmark=1)
    ask.print_phrases(result_to_msg(result, Header(), "1", prompt))
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith('  It goes between "the mug": on the left')
    assert lines[-1].startswith('  and "the tray": on the right')
    text = format_result(result).splitlines()
    assert [line.split(":")[0] for line in text[1:3]] == ["  destination between"] * 2


def test_an_unwritable_overlay_path_is_refused_before_asking(monkeypatch):
    import argparse

    monkeypatch.setattr(ask.rclpy, "init", lambda: pytest.fail("asked the node first"))
    args = argparse.Namespace(overlay="/nonexistent/x.png", prompt="Pick up the mug.",
                              namespace="", mode=None, timeout=5.0, json=False)
    with pytest.raises(OSError, match="no folder /nonexistent"):
        ask.run_ask(args)
    # a prompt of undecodable bytes cannot go into a ROS string (it raised in serialisation)
    args.overlay, args.prompt = None, "\udcff the mug"
    with pytest.raises(ValueError, match="prompt is not valid UTF-8 text: character 0"):
        ask.run_ask(args)


def test_a_command_whose_phrases_name_no_target_says_so(capsys):
    mask = np.zeros((30, 40), bool)
    mask[:10, :10] = True
    prompt = "What is behind the mug?"
    result = GroundingResult(text="A duck.", phrases=[], model="tiny", image_size=(30, 40),
                             prompt=prompt, prompt_phrases=[GroundedPhrase("the mug", 15, 22, 0.9, mask)])
    ask.print_phrases(result_to_msg(result, Header(), "1", prompt))
    assert capsys.readouterr().out.splitlines()[-1] == \
        "  None of the command's phrases is the object it is about (target -1)."
    ask.print_phrases(_response())  # no phrases of its own ("Describe the image."): no such line
    assert "target -1" not in capsys.readouterr().out


def test_an_absent_target_is_named(capsys):
    from ros_ground.cli import format_result
    from ros_ground.nodes.conversions import msg_to_result_json

    prompt = "Pick up the purple mug."
    phrase = GroundedPhrase("the purple mug", 8, 22, 0.9, np.zeros((30, 40), bool))
    result = GroundingResult(text="Yes.", phrases=[], model="tiny", image_size=(30, 40),
                             prompt=prompt, prompt_phrases=[phrase], absent=0)
    msg = result_to_msg(result, Header(), "1", prompt)
    assert (msg.target, msg.absent) == (-1, 0) and msg_to_result_json(msg)["absent"] == 0
    ask.print_phrases(msg)
    assert capsys.readouterr().out.splitlines()[-1] == \
        "  Found nothing that is 'the purple mug': the command has no target (target -1)."
    assert format_result(result).splitlines()[1].startswith(
        "  absent (no proposal can be this; no target): 'the purple mug'")


class _Future:
    def __init__(self, value=None, done=True):
        self.value, self._done = value, done

    def done(self):
        return self._done

    def result(self):
        return self.value


def _goal_never_finishing(cancel: _Future):
    """(an action client class whose goal is accepted and never finishes, its goal handle,
    the feedback callbacks sent with each goal); a cancel request answers `cancel`."""
    handle = type("Handle", (), {"accepted": True, "canceled": 0})()
    handle.get_result_async = lambda: _Future(done=False)
    callbacks = []

    def cancel_goal_async():
        handle.canceled += 1
        return cancel

    handle.cancel_goal_async = cancel_goal_async

    class Client:
        def __init__(self, *args):
            pass

        def wait_for_server(self, timeout_sec):
            return True

        def send_goal_async(self, goal, feedback_callback=None):
            callbacks.append(feedback_callback)
            return _Future(handle)

        def destroy(self):
            pass

    return Client, handle, callbacks


def test_ctrl_c_while_waiting_cancels_the_goal_before_leaving(monkeypatch):
    """Ctrl-C during the answer left the node generating for nobody: the client now asks for the
    cancel and waits for its answer before the interrupt goes on."""
    cancel = _Future(done=False)
    Client, handle, _ = _goal_never_finishing(cancel)
    spins = []

    def spin_once(node, timeout_sec):
        spins.append(handle.canceled)
        if handle.canceled == 0:
            raise KeyboardInterrupt  # Ctrl-C while the answer is generated
        cancel._done = True  # the server answers the cancel request

    monkeypatch.setattr(ask, "ActionClient", Client)
    monkeypatch.setattr(ask.rclpy, "spin_once", spin_once)
    with pytest.raises(KeyboardInterrupt):
        ask.ask(object(), "Describe the scene.", timeout=5.0)
    assert handle.canceled == 1 and spins == [0, 1]  # spun after the request, until answered


def _client_never_answering(fed: bool):
    """An action client whose goal is accepted and never finishes; with `fed`, its feedback
    (the answer streaming) comes on the first spin."""
    Client, handle, callbacks = _goal_never_finishing(_Future())

    def spin_once(node, timeout_sec):
        if fed and callbacks:
            callbacks.pop()(None)

    return Client, spin_once, handle


@pytest.mark.parametrize("fed,how", [(True, "while the node was still answering"),
                                     (False, "before an answer began")])
def test_a_timeout_says_whether_the_node_was_answering_and_that_the_goal_was_canceled(
        monkeypatch, fed, how):
    # "Answer: a blue cube" then "timed out waiting for the grounding node": it was answering
    client, spin_once, handle = _client_never_answering(fed)
    monkeypatch.setattr(ask, "ActionClient", client)
    monkeypatch.setattr(ask.rclpy, "spin_once", spin_once)
    heard = []
    with pytest.raises(TimeoutError) as exc:
        ask.ask(object(), "Describe the scene.", timeout=0.2, on_feedback=heard.append)
    assert str(exc.value) == f"timed out after 0.2 s {how}; the goal was canceled"
    assert handle.canceled == 1 and heard == [None] * fed


def test_a_timeout_after_streamed_text_ends_its_line_on_stdout(monkeypatch, capsys):
    from ros_ground.nodes import cli as ros_cli

    def streams_then_times_out(node, prompt, namespace, mode, timeout, on_feedback, camera):
        feedback = type("F", (), {"feedback": type("P", (), {"partial_text": "a blue cube"})()})()
        on_feedback(feedback)
        raise TimeoutError("timed out after 3 s while the node was still answering; the goal "
                           "was canceled")

    monkeypatch.setattr(ask, "ask", streams_then_times_out)
    assert ros_cli.main(["ask", "Describe the scene.", "--timeout", "3"]) == 2
    out, err = capsys.readouterr()
    assert out == "Answer: a blue cube\n"
    assert err == "ros-ground ask: timed out after 3 s while the node was still answering; the " \
        "goal was canceled\n"


def test_a_reader_that_leaves_ends_ask_quietly_and_cancels_the_goal(monkeypatch, capsys):
    # `ros-ground ask ... | head -3` ended with "ros-ground ask: error: [Errno 32] Broken pipe"
    from ros_ground.nodes import cli as ros_cli

    client, _, handle = _client_never_answering(True)

    def spin_once(node, timeout_sec):
        raise BrokenPipeError(32, "Broken pipe")  # the streamed text's write, in a callback

    monkeypatch.setattr(ask, "ActionClient", client)
    monkeypatch.setattr(ask.rclpy, "spin_once", spin_once)
    assert ros_cli.main(["ask", "Describe the scene."]) == 141
    assert capsys.readouterr().err == "" and handle.canceled == 1


def test_each_object_joined_to_the_target_is_said_and_carried_by_the_message(capsys):
    from ros_ground.cli import format_result
    from ros_ground.nodes.conversions import msg_to_result_json

    masks = [np.zeros((30, 40), bool) for _ in range(2)]
    masks[0][:10, :10] = True
    masks[1][:10, 20:30] = True
    phrases = [GroundedPhrase("the red mug", 8, 19, 0.9, masks[0]),
               GroundedPhrase("the blue cube", 24, 37, 0.8, masks[1])]
    result = GroundingResult(text="ok.", phrases=[], model="tiny", image_size=(30, 40),
                             mode="entities", prompt="Pick up the red mug and the blue cube.",
                             prompt_phrases=phrases, target=0, more_targets=(1,), intent="act")
    response = result_to_msg(result, Header(), "1", result.prompt)
    assert list(response.more_targets) == [1]
    assert msg_to_result_json(response)["more_targets"] == result.to_json()["more_targets"] == [1]
    ask.print_phrases(response)
    lines = capsys.readouterr().out.splitlines()
    about = next(i for i, line in enumerate(lines) if line.startswith("  The command is about"))
    assert lines[about].startswith('  The command is about "the red mug"')
    assert lines[about + 1].startswith('  and about "the blue cube"') and "box x=20 y=0" in lines[about + 1]
    assert "  also a target: 'the blue cube'" in format_result(result)
