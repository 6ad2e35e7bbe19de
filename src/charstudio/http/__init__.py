"""What the two HTTP surfaces share: the REST API (:mod:`charstudio.api`) and the studio
(:mod:`charstudio.web`) both sit on this package and never import each other.

* :mod:`~charstudio.http.deps`: the services, the job queue, paging and the token check as
  ``Annotated`` dependencies, read from ``app.state``;
* :mod:`~charstudio.http.limits` and :mod:`~charstudio.http.uploads`: request bodies capped
  while they stream in, uploaded files written under safe names;
* :mod:`~charstudio.http.errors`: the one mapping of charstudio's errors to HTTP statuses;
* :mod:`~charstudio.http.events`: a job's progress as Server-Sent Events;
* :mod:`~charstudio.http.schemas`: the request bodies both surfaces take.
"""

from charstudio.http.deps import (
    MIN_TOKEN_LENGTH,
    Limit,
    Offset,
    QueueDep,
    ServicesDep,
    check_token_strength,
    read_now,
    require_token,
)
from charstudio.http.errors import HttpError, http_error, validation_body
from charstudio.http.events import event_stream, open_job_events
from charstudio.http.limits import BodyLimit
from charstudio.http.schemas import (
    CaptionEdit,
    CharacterUpdate,
    DatasetRequest,
    ReferenceChoice,
    TrainRequest,
)
from charstudio.http.uploads import (
    UploadCleanup,
    UploadedForm,
    parse_form,
    receive_upload,
    remove_stale_uploads,
    safe_name,
)

__all__ = [
    "MIN_TOKEN_LENGTH",
    "BodyLimit",
    "CaptionEdit",
    "CharacterUpdate",
    "DatasetRequest",
    "HttpError",
    "Limit",
    "Offset",
    "QueueDep",
    "ReferenceChoice",
    "ServicesDep",
    "TrainRequest",
    "UploadCleanup",
    "UploadedForm",
    "check_token_strength",
    "event_stream",
    "http_error",
    "open_job_events",
    "parse_form",
    "read_now",
    "receive_upload",
    "remove_stale_uploads",
    "require_token",
    "safe_name",
    "validation_body",
]
