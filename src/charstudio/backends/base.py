"""The generation backend interface: one request in, images with their parameters out.

Two implementations share it: :class:`charstudio.backends.comfyui_backend.ComfyUIBackend`
(a pool of ComfyUI servers) and the in-process diffusers backend (issue 7). The
generation service picks one by name (``--backend``) and stores what it returns the same
way whichever made it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from charstudio.backends.types import BackendImage, CancelToken, GenerationRequest, ProgressSink

__all__ = ["Backend", "SupportsCheck", "SupportsUpload"]


@runtime_checkable
class Backend(Protocol):
    """Something that turns a :class:`GenerationRequest` into images.

    Attributes:
        name: The ``--backend`` name (``comfyui``, ``diffusers``).
    """

    name: str

    def generate(
        self,
        request: GenerationRequest,
        *,
        progress: ProgressSink | None = None,
        cancel: CancelToken | None = None,
    ) -> list[BackendImage]:
        """Make one image per seed of ``request``.

        Args:
            request: The validated request.
            progress: Called with each :class:`ProgressEvent`, from the calling thread.
            cancel: Cancelling it stops the work as soon as the backend can.

        Returns:
            The images, ordered by ``index``; all of them, or an exception.

        Raises:
            BackendError: a subclass naming the problem and the fix
                (``ComfyUIUnavailable``, ``ServerLost``, ``WorkflowRejected``,
                ``ModelMissing``, ``GenerationFailed``, ``GenerationCancelled``).
        """
        ...


@runtime_checkable
class SupportsCheck(Protocol):
    """A backend that can say, without generating, whether a request could run now."""

    def check(self, request: GenerationRequest) -> str:
        """Check, without generating, that the request could run now.

        Returns:
            Where it would run (a server URL, or ``"embedded"``).

        Raises:
            BackendError: it could not (missing model file, node pack, server ...); the
                message names the problem and the fix.
        """
        ...


@runtime_checkable
class SupportsUpload(Protocol):
    """A backend with servers that load images by name (ComfyUI's ``LoadImage``)."""

    def upload(self, request: GenerationRequest) -> str:
        """Upload the images ``request`` loads to the server that would run it, under the
        names its graph uses, so a printed graph POSTed as it is runs there.

        Returns:
            The server's URL.

        Raises:
            BackendError: no server could take them (the message names each and why).
        """
        ...
