from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ConfigCatSegmentConfig(AppConfig):
    name = "configcat_segment"
    verbose_name = _("ConfigCat → Segment")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks
        from .conf import get_settings
        from .database import triggers
        from .delivery import credentials as health
        from .delivery import runner as runners
        from .operations import install as install_operations
        from .segment import transport

        checks.register()
        transport.install_log_filter()
        health.connect_signals()
        post_migrate.connect(triggers.on_post_migrate, sender=self)
        install_operations()
        try:
            delivery = get_settings().DELIVERY
        except ImproperlyConfigured:
            return  # manage.py check reports it; nothing is delivered until it is fixed
        runners.install(delivery)
