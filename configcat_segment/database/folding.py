"""The event counts' window: the hours kept one by one, and the folded count for the rest.

Only the chart asks for hours, and only for the last :data:`HOURS_CHARTED`;
everything else adds the hours up. So the counts of every hour before the last
:data:`HOURS_KEPT` are folded into one row per connection and status, at the hour
:data:`FOLDED` (the epoch, older than any event), and the overview reads at most
connections x statuses x (:data:`HOURS_KEPT` + 2) rows, however long events are kept. The
day of margin beyond the chart's hours covers a web server's clock running ahead of the
database's and a request that reads across the turn of an hour, for four rows per
connection and hour.

Folding moves counts between rows of one connection and status without changing their
sum, so it is exact at every moment; what has to stay right is where later changes to a
folded hour's events go, and when folding runs:

- On **PostgreSQL** nothing changes for writers: they still append changes with the
  event's own hour. The adder, which already runs in the background under the advisory
  lock, adds changes of a folded hour to the folded row and then folds the hours that went
  out of the window since (an index range on ``hour``, empty but at the turn of an hour).
  It touches only counts, which writers never lock, so folding makes no event writer
  wait; prune and the rebuild command call the adder too.
- On **SQLite** a trigger on the counts table folds, in the writer's transaction, when a
  count row is created: once per connection, status and hour. An event of an hour out of
  the window (written late, or settled, requeued or moved there) is counted in the folded
  row straight away; the delete and update triggers take one from the event's hour if
  that row is there, else from the folded row (whatever the clock says: near the window's
  edge an hour's row may be folded or not yet). The folded row holds at least the events
  of every hour whose row is gone (by induction over the changes), so that never falls
  through, and a table emptied out of order still leaves no negative count behind.

Folding is part of writing because only writing makes rows: a quiet installation has no
new hour to fold, and a busy one folds as it goes, on its own, with nothing to schedule.
Folding on read would make a page view a write (on SQLite, one that waits for the writer),
and folding only when pruning would leave the rows growing where nobody prunes.
:func:`.counts.rebuild` counts straight into the folded form.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

HOURS_CHARTED: Final = 24  # hours that readers may ask for one by one (the chart's)
HOURS_KEPT: Final = 2 * HOURS_CHARTED  # hours counted one by one; older ones are folded
FOLDED: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # the hour of the folded counts
FOLDED_PG: Final = "timestamptz '1970-01-01 00:00:00+00'"
FOLDED_SQLITE: Final = "'1970-01-01 00:00:00'"
# The first hour still counted one by one, on the database's clock.
KEPT_FROM_PG: Final = f"date_trunc('hour', now(), 'UTC') - interval '{HOURS_KEPT} hours'"
KEPT_FROM_SQLITE: Final = f"strftime('%Y-%m-%d %H:00:00', 'now', '-{HOURS_KEPT} hours')"
