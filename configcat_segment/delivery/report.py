"""What delivery rounds did, in counts: the dispatcher's answer, the worker's summary."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class Report:
    """What one or more rounds did."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0  # failed, will be tried again
    dead: int = 0
    waiting: int = 0  # held back because the connection is unhealthy
    released: int = 0  # claimed but not sent: back in the queue, attempts untouched
    lost: int = 0  # settled too late: another worker had claimed them since
    requests: int = 0
    more: bool = False  # more may be due for this connection now

    def add(self, other: Report) -> None:
        for f in fields(self):
            if f.name != "more":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "more"}
