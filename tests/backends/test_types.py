"""The backend-neutral request and cancellation token."""

from __future__ import annotations

import threading

import pytest

from charstudio.backends import CancelToken, ServerNames
from charstudio.errors import InvalidParameter
from tests.backends.conftest import RequestMaker


def test_cancel_token_runs_callbacks_once_and_late_ones_at_once() -> None:
    token, calls = CancelToken(), []
    unregister = token.on_cancel(lambda: calls.append("a"))
    token.on_cancel(lambda: calls.append("b"))
    unregister()
    thread = threading.Thread(target=token.cancel)
    thread.start()
    thread.join()
    token.cancel()
    assert calls == ["b"] and token.cancelled
    token.on_cancel(lambda: calls.append("late"))
    assert calls == ["b", "late"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"seeds": (-1,)},
            "seed -1 is out of range: use 0 to 18446744073709551615 (2^64-1), or leave the "
            "seed out for a random one (it is recorded with the image)",
        ),
        (
            {"seeds": (2**64,)},
            "seed 18446744073709551616 is out of range: use 0 to 18446744073709551615 "
            "(2^64-1), or leave the seed out for a random one (it is recorded with the image)",
        ),
        ({"seeds": (3, 3)}, "the same seed twice would make the same image: drop one"),
        (
            {"seeds": ()},
            "invalid generation request (seeds: Tuple should have at least 1 item after "
            "validation, not 0)",
        ),
        (
            {"controlnet": "x.safetensors"},
            "a pose image needs an OpenPose ControlNet and vice versa",
        ),
    ],
)
def test_request_is_checked_at_the_door(
    make_request: RequestMaker, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        make_request(**changes)
    assert str(caught.value) == message


def test_workflow_request_uses_the_server_names(make_request: RequestMaker) -> None:
    request = make_request(seeds=(5, 6))
    second = request.workflow_request(1, ServerNames(reference_image="charstudio_ab.png"))
    assert (second.seed, second.job, second.reference_image) == (6, "job-1-2", "charstudio_ab.png")
    assert second.lora == "yuki_v1.safetensors"
