"""Writing a change webhook's body as ConfigCat does, from the template: for the
``configcat_segment_sample_webhook`` command, the tests and the benchmarks. Pure: no
Django, no I/O. (:mod:`.body` reads them.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..constants import WEBHOOK_BODY_TEMPLATE


def render_body(
    variables: Mapping[str, str],
    change_details: Sequence[Mapping[str, Any]],
    *,
    template: str = WEBHOOK_BODY_TEMPLATE,
    escape: bool = True,
) -> str:
    """A body as ConfigCat makes it from ``template``: ``##Name##`` replaced by
    ``variables["Name"]``, ``##ChangeDetails##`` by a JSON array.

    ``escape=False`` fills strings in unescaped, as ConfigCat may do with change notes.
    """
    body = template
    for name, value in variables.items():
        filled = json.dumps(value, ensure_ascii=False)[1:-1] if escape else value
        body = body.replace(f"##{name}##", filled)
    return body.replace("##ChangeDetails##", json.dumps(list(change_details), ensure_ascii=False))
