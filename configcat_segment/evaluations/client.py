"""The process's ConfigCat client, built from settings, with evaluations forwarded.

Created on first use, never at import time, and once per process: the SDK's auto-poll
thread does not survive ``fork()``, so a child process (gunicorn ``--preload``, uWSGI
without ``lazy-apps``, ``multiprocessing``) sets the parent's client aside (an
``os.register_at_fork`` hook in :mod:`configcat_segment.lifecycle`) and builds a fresh one
on first use. It is closed at exit, and made again if something else closed it
(``configcatclient.close_all()``).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import configcatclient
from asgiref.sync import sync_to_async
from configcatclient.configcatoptions import ConfigCatOptions
from configcatclient.datagovernance import DataGovernance
from configcatclient.localfiledatasource import LocalFileFlagOverrides
from configcatclient.overridedatasource import OverrideBehaviour
from configcatclient.pollingmode import PollingMode
from django.core.exceptions import ImproperlyConfigured

from ..compat import configcat_client_is_open, flag_evaluated_callbacks
from ..conf import AppSettings, get_settings, setting_path

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

# The SDK key formats the SDK accepts (it checks them when a client is made, and puts the
# key in its error message).
_SDK_KEY = re.compile(r"(configcat-sdk-1/)?[^/\n]{22}/[^/\n]{22}")
_PROXY_SDK_KEY = re.compile(r"configcat-proxy/.+")

_lock = threading.Lock()
_client: Any = None
# The client whose first config is loaded: what aget_client() returns without a thread.
_warm_client: Any = None
# In a fork()ed child: the parent's client, to be closed before this process makes its own.
_inherited: Any = None


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
    elif not local_only and not _looks_like_sdk_key(sdk_key, settings.BASE_URL):
        raise ImproperlyConfigured(
            f"{setting_path('SDK_KEY')} does not look like a ConfigCat SDK key: copy it from "
            'the ConfigCat dashboard ("configcat-sdk-1/…/…", or "…/…" with 22 characters on '
            'each side for older keys; "configcat-proxy/…" with a BASE_URL).'
        )
    options = ConfigCatOptions(
        base_url=settings.BASE_URL,
        polling_mode=_POLLING_MODES[settings.POLLING_MODE](settings.POLL_INTERVAL_SECONDS),
        data_governance=_DATA_GOVERNANCE[settings.DATA_GOVERNANCE],
        flag_overrides=overrides,
    )
    return sdk_key, options


def _looks_like_sdk_key(sdk_key: str, base_url: str | None) -> bool:
    return bool(_SDK_KEY.fullmatch(sdk_key) or (base_url and _PROXY_SDK_KEY.fullmatch(sdk_key)))


def get_client() -> Any:
    """The process's ``ConfigCatClient``, built from ``CONFIGCAT_SEGMENT`` on first use.

    Evaluations made with it are forwarded to Segment (unless ``FORWARD_EVALUATIONS`` is
    off). Safe to call from any thread, and after ``fork()``. In auto polling mode (the
    default) the client's first evaluation waits for its first config, up to 5 seconds;
    async code should use :func:`aget_client`.
    """
    client = _client
    if client is not None and _is_open(client):
        return client
    return _build()


async def aget_client() -> Any:
    """:func:`get_client` for async code: never blocks the event loop.

    The first call builds the client and waits for its first config (what the first
    evaluation would wait for: up to 5 seconds in auto polling mode, a download in lazy
    loading mode) in a worker thread. After that it returns at once.
    """
    client = _warm_client
    if client is not None and _is_open(client):
        return client
    return await sync_to_async(_warm_up, thread_sensitive=False)()


def _warm_up() -> Any:
    global _warm_client
    client = get_client()
    if client is not _warm_client:
        if get_settings().POLLING_MODE != "manual":  # manual: only force_refresh() fetches
            client.get_all_keys()  # reads the config as an evaluation would, waiting for it
        _warm_client = client
    return client


def _is_open(client: Any) -> bool:
    """Whether ``client`` is still the SDK's client for its key (``close_all()`` closes it)."""
    return configcat_client_is_open(client)


def _build() -> Any:
    global _client, _inherited
    with _lock:
        if _client is not None and _is_open(_client):
            return _client
        if _inherited is not None:
            # The parent's client, inherited through fork(): its polling thread is gone.
            # Closing it here only unregisters it from the SDK, so a fresh one can be made.
            _close(_inherited)
            _inherited = None
        settings = get_settings()
        sdk_key, options = client_options(settings)
        client = configcatclient.get(sdk_key, options)
        if settings.FORWARD_EVALUATIONS:
            forward_evaluations(client)
        _client = client
        return client


def close() -> None:
    """Close the process's client (its polling thread stops); the next use builds a new one."""
    global _client, _warm_client
    with _lock:
        client, _client, _warm_client = _client, None, None
    if client is not None:
        _close(client)


def _close(client: Any) -> None:
    # Only while the SDK still has it: after close_all() its key may already belong to a
    # new client, which client.close() would unregister (and without one, it raises).
    if _is_open(client):
        client.close()


def forward_evaluations(client: Any) -> Any:
    """Forward the evaluations of a ConfigCat ``client`` you made yourself. Idempotent.

    Returns the client, so ``client = forward_evaluations(configcatclient.get(...))`` reads
    well. Register it at start-up: the SDK's hook lists are not locked. Closing a client
    clears its hooks, so call it again for the client you make after that.
    """
    from .hook import recorder

    # The SDK's own list, not a record of ours: closing a client empties it.
    if recorder.on_flag_evaluated not in flag_evaluated_callbacks(client):
        client.get_hooks().add_on_flag_evaluated(recorder.on_flag_evaluated)
    return client


def after_fork_in_child() -> None:
    """In a ``fork()``ed child: set the parent's client aside (its polling thread is gone);
    the next use builds this process's own."""
    global _lock, _client, _warm_client, _inherited
    # A thread of the parent may have held the lock at the moment of fork().
    _lock = threading.Lock()
    # Checked here, once, rather than comparing os.getpid() (a system call) on every use.
    if _client is not None:
        _client, _warm_client, _inherited = None, None, _client
