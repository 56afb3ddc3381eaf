"""The generic service API: a service whose whole interface is ``do_command``."""

from __future__ import annotations

from ...resource import API, ServiceBase


class Generic(ServiceBase):
    """Models override ``do_command`` (the base raises NotSupported) and may add ``get_status``."""

    API = API.service("generic")
