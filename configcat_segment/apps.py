from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ConfigCatSegmentConfig(AppConfig):
    name = "configcat_segment"
    verbose_name = _("ConfigCat → Segment")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, lifecycle
        from .database import repair
        from .delivery import credentials
        from .operations import install as install_operations

        checks.register()
        credentials.connect_signals()
        # Triggers that a SQLite table rebuild dropped are put back after every migrate.
        post_migrate.connect(repair.on_post_migrate, sender=self)
        install_operations()
        lifecycle.install()
