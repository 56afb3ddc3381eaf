"""The generic component API: a component whose whole interface is ``do_command``."""

from __future__ import annotations

from ...resource import API, ComponentBase


class Generic(ComponentBase):
    """Models override ``do_command`` (the base raises NotSupported) and may add ``get_status``."""

    API = API.component("generic")
