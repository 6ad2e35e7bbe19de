"""Character Studio: server-rendered pages over the same services as the API.

:func:`mount_web` adds the pages under ``/studio`` to the app that
:func:`charstudio.server.create_app` builds; they sit behind the API token too, through a
signed session cookie set by the login form (:mod:`charstudio.web.auth`). The studio shares
what both HTTP surfaces need (:mod:`charstudio.http`) with the API, and never imports it.
"""

from charstudio.web.app import mount_web

__all__ = ["mount_web"]
