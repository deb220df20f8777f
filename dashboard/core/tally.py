"""Counts that add up: a dataclass base whose `merge` adds another tally's counts field by field. Pure."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class Tally:
    """Base of a dataclass of counts: int fields, and dict fields of counts by key."""

    def merge(self, other: Tally) -> None:
        """Add `other`'s counts to these: every field the two share (a subclass's own fields stay apart).

        Numbers add; a dict adds key by key (a key missing here starts at 0).
        """
        mine = {f.name for f in fields(self)}
        for f in fields(other):
            if f.name not in mine:
                continue
            theirs = getattr(other, f.name)
            if isinstance(theirs, dict):
                counts = getattr(self, f.name)
                for key, n in theirs.items():
                    counts[key] = counts.get(key, 0) + n
            else:
                setattr(self, f.name, getattr(self, f.name) + theirs)
