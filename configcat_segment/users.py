"""The old home of :func:`default_user_factory`, kept so settings that name it still work.

``CONFIGCAT_SEGMENT["USER_FACTORY"] = "configcat_segment.evaluations.users.default_user_factory"``
was the documented default before the app was split into packages.
"""

from .evaluations.users import default_user_factory

__all__ = ["default_user_factory"]
