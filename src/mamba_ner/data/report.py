"""What a conversion did to every entity, so that nothing is lost silently.

Every entity a reader finds is counted as *read*, then ends up either *kept* (present in the
output tags) or *dropped* (with a reason and a location). On the way an entity may be
*repaired* (its tags or boundaries were fixed: orphan `I-X`, `i-CHEM`, a boundary widened to a
token edge) or *merged* (discontinuous brat fragments joined into one span); a step after
reading (removing train sentences that also occur in test) may still move a kept entity to
dropped (`entity_removed`). The invariant, checked by `ConversionReport.check()` per type:

    read == kept + dropped,   repaired <= read,   merged <= read,

and every dropped / repaired / merged entity has exactly one itemised `ReportItem` (reason +
location), so the itemised list and the counters always agree.

Things that are not entities (brat relation lines, sentences skipped on a malformed line,
duplicate sentences removed from train) are itemised too, under `ignored` / `skipped` /
`removed`, and counted in `counts`; `warning` items (e.g. brat surface text that does not match
the `.txt`) change nothing and are listed for the user to look at.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

ENTITY_ACTIONS = ("dropped", "repaired", "merged")
OTHER_ACTIONS = ("ignored", "skipped", "removed", "warning")


@dataclass(frozen=True)
class ReportItem:
    """One thing the conversion did, with why and where.

    Args:
        action (`str`): one of `dropped`, `repaired`, `merged` (entities) or `ignored`, `skipped`,
            `removed`, `warning`.
        reason (`str`): a short reason, the same string for every item of its kind (it is grouped on).
        location (`str`): `file:line` or `file:offset N`.
        entity_type (`str`, *optional*): the entity type, for entity items.
        detail (`str`): specifics of this item (tags, surface text, the conflicting entity...).
    """

    action: str
    reason: str
    location: str
    entity_type: str | None = None
    detail: str = ""


class ConversionReport:
    """Counters per entity type plus itemised reasons; see the module docstring for the invariant."""

    def __init__(self):
        self.read: Counter = Counter()
        self.kept: Counter = Counter()
        self.dropped: Counter = Counter()
        self.repaired: Counter = Counter()
        self.merged: Counter = Counter()
        self.counts: Counter = Counter()  # documents, sentences, tokens, lines ignored, ...
        self.items: list[ReportItem] = []
        self.notes: list[str] = []  # e.g. the tag scheme detected in a file

    # ---- recording -------------------------------------------------------------------------
    def entity_read(self, entity_type: str, n: int = 1) -> None:
        self.read[entity_type] += n

    def entity_kept(self, entity_type: str, n: int = 1) -> None:
        self.kept[entity_type] += n

    def entity_dropped(self, entity_type: str, reason: str, location: str, detail: str = "") -> None:
        self.dropped[entity_type] += 1
        self.items.append(ReportItem("dropped", reason, location, entity_type, detail))

    def entity_repaired(self, entity_type: str, reason: str, location: str, detail: str = "") -> None:
        self.repaired[entity_type] += 1
        self.items.append(ReportItem("repaired", reason, location, entity_type, detail))

    def entity_merged(self, entity_type: str, reason: str, location: str, detail: str = "") -> None:
        self.merged[entity_type] += 1
        self.items.append(ReportItem("merged", reason, location, entity_type, detail))

    def entity_removed(self, entity_type: str, reason: str, location: str, detail: str = "") -> None:
        """Move an entity counted as kept to dropped (a later step removed it, e.g. a duplicate sentence)."""
        if self.kept[entity_type] < 1:
            raise ValueError(f"no kept {entity_type!r} entity to remove ({location})")
        self.kept[entity_type] -= 1
        self.entity_dropped(entity_type, reason, location, detail)

    def note_item(
        self, action: str, reason: str, location: str, detail: str = "", entity_type: str | None = None
    ) -> None:
        """Itemise a non-entity event (`ignored`, `skipped`, `removed`, `warning`) and count it."""
        if action not in OTHER_ACTIONS:
            raise ValueError(f"action must be one of {OTHER_ACTIONS}, got {action!r}")
        self.counts[f"{action}: {reason}"] += 1
        self.items.append(ReportItem(action, reason, location, entity_type, detail))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def update(self, other: ConversionReport) -> ConversionReport:
        """Add another report's counters, items and notes to this one (in place); returns self."""
        for name in ("read", "kept", "dropped", "repaired", "merged", "counts"):
            getattr(self, name).update(getattr(other, name))
        self.items.extend(other.items)
        self.notes.extend(other.notes)
        return self

    # ---- reading ---------------------------------------------------------------------------
    @property
    def totals(self) -> dict[str, int]:
        return {name: sum(getattr(self, name).values()) for name in ("read", "kept", "dropped", "repaired", "merged")}

    def reasons(self, action: str) -> Counter:
        """How many items of `action` there are per reason."""
        return Counter(item.reason for item in self.items if item.action == action)

    def items_for(self, action: str) -> list[ReportItem]:
        return [item for item in self.items if item.action == action]

    def check(self) -> None:
        """Raise `AssertionError` naming every place where the counts do not add up."""
        problems = []
        types = set(self.read) | set(self.kept) | set(self.dropped) | set(self.repaired) | set(self.merged)
        for entity_type in sorted(types):
            read, kept, dropped = self.read[entity_type], self.kept[entity_type], self.dropped[entity_type]
            if read != kept + dropped:
                problems.append(f"{entity_type}: read {read} != kept {kept} + dropped {dropped}")
            for name in ("repaired", "merged"):
                if getattr(self, name)[entity_type] > read:
                    problems.append(f"{entity_type}: {name} {getattr(self, name)[entity_type]} > read {read}")
        for action in ENTITY_ACTIONS:
            itemised = Counter(item.entity_type for item in self.items if item.action == action)
            if itemised != +getattr(self, action):
                problems.append(f"{action}: itemised {dict(itemised)} != counted {dict(+getattr(self, action))}")
        for action in OTHER_ACTIONS:
            itemised = Counter(f"{action}: {item.reason}" for item in self.items if item.action == action)
            counted = Counter({k: v for k, v in self.counts.items() if k.startswith(f"{action}: ")})
            if itemised != counted:
                problems.append(f"{action}: itemised {dict(itemised)} != counted {dict(counted)}")
        if problems:
            raise AssertionError("conversion report does not add up:\n  " + "\n  ".join(problems))

    def summary(self, max_items: int = 5) -> str:
        """A human-readable summary: totals, per-type table, then each reason with a few locations."""
        totals = self.totals
        lines = [
            "entities: read {read}, kept {kept}, dropped {dropped} (repaired {repaired}, merged {merged})".format(
                **totals
            )
        ]
        plain_counts = {k: v for k, v in self.counts.items() if ": " not in k}
        if plain_counts:
            lines.append("input: " + ", ".join(f"{k} {v}" for k, v in sorted(plain_counts.items())))
        types = sorted(set(self.read) | set(self.kept))
        if types:
            width = max(len(t) for t in types)
            lines.append(f"  {'type':<{width}}  {'read':>7} {'kept':>7} {'dropped':>7} {'repaired':>8} {'merged':>7}")
            for t in types:
                lines.append(
                    f"  {t:<{width}}  {self.read[t]:>7} {self.kept[t]:>7} {self.dropped[t]:>7} {self.repaired[t]:>8} {self.merged[t]:>7}"
                )
        for action in ENTITY_ACTIONS + OTHER_ACTIONS:
            for reason, count in self.reasons(action).most_common():
                lines.append(f"{action} {count}: {reason}")
                shown = [item for item in self.items if item.action == action and item.reason == reason][:max_items]
                for item in shown:
                    what = f" {item.entity_type}" if item.entity_type else ""
                    detail = f" ({item.detail})" if item.detail else ""
                    lines.append(f"    {item.location}{what}{detail}")
                if count > len(shown):
                    lines.append(f"    ... and {count - len(shown)} more")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-serialisable form: totals, per-type counters, other counts, notes and every item."""
        return {
            "totals": self.totals,
            "per_type": {
                name: dict(sorted(getattr(self, name).items()))
                for name in ("read", "kept", "dropped", "repaired", "merged")
            },
            "counts": dict(sorted(self.counts.items())),
            "reasons": {action: dict(self.reasons(action)) for action in ENTITY_ACTIONS + OTHER_ACTIONS},
            "notes": list(self.notes),
            "items": [asdict(item) for item in self.items],
        }

    def __repr__(self) -> str:
        return "ConversionReport({read} read, {kept} kept, {dropped} dropped, {repaired} repaired, {merged} merged)".format(
            **self.totals
        )
