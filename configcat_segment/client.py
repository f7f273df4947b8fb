"""The process's ConfigCat client, built from settings, with evaluations forwarded.

Created on first use, never at import time, and once per process: the SDK's auto-poll
thread does not survive ``fork()``, so a child process (gunicorn ``--preload``, uWSGI
without ``lazy-apps``, ``multiprocessing``) sets the parent's client aside (an
``os.register_at_fork`` hook) and builds a fresh one on first use. It is closed at exit.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from pathlib import Path
from typing import Any

import configcatclient
from configcatclient.configcatoptions import ConfigCatOptions
from configcatclient.datagovernance import DataGovernance
from configcatclient.localfiledatasource import LocalFileFlagOverrides
from configcatclient.overridedatasource import OverrideBehaviour
from configcatclient.pollingmode import PollingMode
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from .conf import SETTING_NAME, AppSettings, get_settings, setting_path

# With local-only flags the SDK accepts any key; this one says where the flags come from.
LOCAL_ONLY_SDK_KEY = "configcat-segment/local-flags-only"

_POLLING_MODES = {
    "auto": lambda seconds: PollingMode.auto_poll(poll_interval_seconds=seconds),
    "lazy": lambda seconds: PollingMode.lazy_load(cache_refresh_interval_seconds=seconds),
    "manual": lambda seconds: PollingMode.manual_poll(),
}
_DATA_GOVERNANCE = {
    "global": DataGovernance.Global,
    "eu_only": DataGovernance.EuOnly,
}
_OVERRIDE_BEHAVIOURS = {
    "local_only": OverrideBehaviour.LocalOnly,
    "local_over_remote": OverrideBehaviour.LocalOverRemote,
    "remote_over_local": OverrideBehaviour.RemoteOverLocal,
}

_lock = threading.Lock()
_client: Any = None
# In a fork()ed child: the parent's client, to be closed before this process makes its own.
_inherited: Any = None
_closing_registered = False
# Hooks objects forwarding is attached to (weakly: a client's lifetime is its owner's).
_forwarding: weakref.WeakSet[Any] = weakref.WeakSet()


def client_options(settings: AppSettings) -> tuple[str, ConfigCatOptions]:
    """The SDK key and ``ConfigCatOptions`` the settings describe.

    Raises ``ImproperlyConfigured`` naming the setting when they cannot make a client.
    """
    overrides = None
    local_only = False
    if settings.FLAG_OVERRIDES:
        path = Path(settings.FLAG_OVERRIDES)
        if not path.is_file():
            raise ImproperlyConfigured(
                f"{setting_path('FLAG_OVERRIDES')} names a flags file that does not exist: "
                f"{str(path)!r}."
            )
        behaviour = _OVERRIDE_BEHAVIOURS[settings.FLAG_OVERRIDES_BEHAVIOUR]
        overrides = LocalFileFlagOverrides(str(path), behaviour)
        local_only = behaviour == OverrideBehaviour.LocalOnly
    sdk_key = settings.SDK_KEY
    if not sdk_key:
        if not local_only:
            raise ImproperlyConfigured(
                f"{setting_path('SDK_KEY')} is not set. Set it to your ConfigCat SDK key, or "
                f"set {setting_path('FLAG_OVERRIDES')} to a flags file (with "
                f'{setting_path("FLAG_OVERRIDES_BEHAVIOUR")} "local_only") to evaluate '
                "flags without ConfigCat."
            )
        sdk_key = LOCAL_ONLY_SDK_KEY
    options = ConfigCatOptions(
        base_url=settings.BASE_URL,
        polling_mode=_POLLING_MODES[settings.POLLING_MODE](settings.POLL_INTERVAL_SECONDS),
        data_governance=_DATA_GOVERNANCE[settings.DATA_GOVERNANCE],
        flag_overrides=overrides,
    )
    return sdk_key, options


def get_client() -> Any:
    """The process's ``ConfigCatClient``, built from ``CONFIGCAT_SEGMENT`` on first use.

    Evaluations made with it are forwarded to Segment (unless ``FORWARD_EVALUATIONS`` is
    off). Safe to call from any thread, and after ``fork()``.
    """
    client = _client
    if client is not None:
        return client
    return _build()


def _build() -> Any:
    global _client, _inherited, _closing_registered
    with _lock:
        if _client is not None:
            return _client
        if _inherited is not None:
            # The parent's client, inherited through fork(): its polling thread is gone.
            # Closing it here only unregisters it from the SDK, so a fresh one can be made.
            _inherited.close()
            _inherited = None
        settings = get_settings()
        sdk_key, options = client_options(settings)
        client = configcatclient.get(sdk_key, options)
        if settings.FORWARD_EVALUATIONS:
            forward_evaluations(client)
        _client = client
        if not _closing_registered:
            atexit.register(close)
            _closing_registered = True
        return client


def close() -> None:
    """Close the process's client (its polling thread stops); the next use builds a new one."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        _forwarding.discard(client.get_hooks())
        client.close()


def forward_evaluations(client: Any) -> Any:
    """Forward the evaluations of a ConfigCat ``client`` you made yourself. Idempotent.

    Returns the client, so ``client = forward_evaluations(configcatclient.get(...))`` reads
    well. Register it at start-up: the SDK's hook lists are not locked.
    """
    from .recorder import recorder

    hooks = client.get_hooks()
    if hooks not in _forwarding:
        hooks.add_on_flag_evaluated(recorder.on_flag_evaluated)
        _forwarding.add(hooks)
    return client


def _after_fork_in_child() -> None:
    global _lock, _client, _inherited
    # A thread of the parent may have held the lock at the moment of fork().
    _lock = threading.Lock()
    # Checked here, once, rather than comparing os.getpid() (a system call) on every use.
    if _client is not None:
        _client, _inherited = None, _client


os.register_at_fork(after_in_child=_after_fork_in_child)


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        close()


setting_changed.connect(_settings_changed, dispatch_uid="configcat_segment.client.close")
