from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConfigCatSegmentConfig(AppConfig):
    name = "configcat_segment"
    verbose_name = _("ConfigCat → Segment")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, lifecycle
        from .delivery import credentials
        from .operations import install as install_operations

        checks.register()
        credentials.connect_signals()
        install_operations()
        lifecycle.install()
