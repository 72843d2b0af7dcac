"""Auto-suggest source → target column pairs by normalised-name similarity and type fit."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from runs.engine.connectors import ColumnInfo, TableInfo
from runs.engine.connectors.base import type_family

from .models import EntityMapping
from .schema import system_table

THRESHOLD = 0.5
SYNONYMS: dict[str, tuple[str, ...]] = {
    "cust": ("customer",),
    "custs": ("customer",),
    "customers": ("customer",),
    "addr": ("address",),
    "address": ("street",),
    "str": ("street",),
    "st": ("street",),
    "zip": ("postal",),
    "zipcode": ("postal", "code"),
    "postcode": ("postal", "code"),
    "tel": ("phone",),
    "telephone": ("phone",),
    "ph": ("phone",),
    "mobile": ("phone",),
    "mail": ("email",),
    "e": (),
    "nm": ("name",),
    "desc": ("description",),
    "notes": ("description",),
    "note": ("description",),
    "comments": ("description",),
    "creation": ("created",),
    "create": ("created",),
    "dt": ("date",),
    "qty": ("quantity",),
    "amt": ("amount",),
    "no": ("number",),
    "num": ("number",),
    "nbr": ("number",),
    "acct": ("account",),
    "stat": ("status",),
    "sts": ("status",),
    "curr": ("currency",),
    "ccy": ("currency",),
    "fname": ("first", "name"),
    "lname": ("last", "name"),
    "orders": ("order",),
    "contacts": ("contact",),
    "accounts": ("account",),
}
NOISE = {"line", "1", "2", "3", "code", "the", "of"}
# Generic words say little about a column's meaning: they count less in the overlap.
WEIGHTS = {
    "number": 0.4,
    "id": 0.4,
    "name": 0.6,
    "date": 0.5,
    "type": 0.4,
    "legacy": 0.2,
    "old": 0.2,
    "src": 0.2,
    "source": 0.2,
    "new": 0.2,
}


@dataclass(frozen=True)
class Suggestion:
    source: str
    target: str
    score: float
    reason: str


def name_tokens(name: str, *, drop: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Lower-case word tokens of a column name with synonyms applied (pure)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    words = [w for w in re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[0-9])", spaced.lower()) if w]
    out: list[str] = []
    for word in words:
        out.extend(SYNONYMS.get(word, (word,)))
    kept = [w for w in out if w not in drop]
    return tuple(kept or out)


def _singular(name: str) -> str:
    word = name.lower()
    return word[:-1] if word.endswith("s") else word


def name_score(source: tuple[str, ...], target: tuple[str, ...]) -> float:
    """Similarity 0..1 of two token tuples: sequence ratio or token overlap, whichever wins."""
    ratio = difflib.SequenceMatcher(None, " ".join(source), " ".join(target)).ratio()
    s, t = set(source) - NOISE or set(source), set(target) - NOISE or set(target)
    common = _weight(s & t)
    if not common:
        return ratio
    overlap = common / min(_weight(s), _weight(t))
    jaccard = common / _weight(s | t)
    return max(ratio, 0.55 * overlap + 0.45 * jaccard)


def _weight(tokens: set[str]) -> float:
    return sum(WEIGHTS.get(t, 1.0) for t in tokens)


def type_fit(source: ColumnInfo, target: ColumnInfo) -> tuple[float, str]:
    """Score multiplier and explanation for putting ``source`` values into ``target``."""
    s = type_family(source.cast_type or source.data_type)
    t = type_family(target.cast_type or target.data_type)
    if s == t or t == "text":
        return 1.0, "types fit"
    if s == "text":
        return 0.9, f"text → {t}: needs a cast/parse step"
    if {s, t} <= {"integer", "numeric"}:
        return 0.95, f"{s} → {t}"
    return 0.5, f"{s} → {t}: types differ"


def suggest_pairs(
    source: TableInfo,
    target: TableInfo,
    *,
    skip_targets: set[str] = frozenset(),
    skip_sources: set[str] = frozenset(),
    rejected: set[tuple[str, str]] = frozenset(),
) -> list[Suggestion]:
    """Best one-to-one source → target column pairs above THRESHOLD, best first (pure)."""
    drop_s = frozenset({_singular(source.name), source.name.lower()})
    drop_t = frozenset({_singular(target.name), target.name.lower()})
    candidates = []
    for tcol in target.columns:
        if tcol.name in skip_targets or tcol.generated or (tcol.primary_key and tcol.has_default):
            continue
        t_tokens = name_tokens(tcol.name, drop=drop_t)
        for scol in source.columns:
            if (scol.name, tcol.name) in rejected or scol.name in skip_sources:
                continue
            base = name_score(name_tokens(scol.name, drop=drop_s), t_tokens)
            fit, why = type_fit(scol, tcol)
            score = round(base * fit, 3)
            if score >= THRESHOLD:
                candidates.append(
                    Suggestion(scol.name, tcol.name, score, f"name {base:.0%} alike; {why}")
                )
    candidates.sort(key=lambda s: (-s.score, s.target, s.source))
    used_s: set[str] = set()
    used_t: set[str] = set()
    chosen = []
    for cand in candidates:
        if cand.source in used_s or cand.target in used_t:
            continue
        used_s.add(cand.source)
        used_t.add(cand.target)
        chosen.append(cand)
    return chosen


def entity_suggestions(
    *, entity: EntityMapping, rejected: set[tuple[str, str]] = frozenset()
) -> list[Suggestion]:
    """Suggestions for an entity's unmapped target columns (read-only; ApplicationError when a
    schema cannot be read)."""
    source = system_table(entity.plan.source, entity.source_table)
    target = system_table(entity.plan.target, entity.target_table)
    fields = list(entity.fields.values_list("target_column", "source_columns"))
    mapped = {t for t, _ in fields}
    used = {c for _, cols in fields for c in cols or ()}
    return suggest_pairs(source, target, skip_targets=mapped, skip_sources=used, rejected=rejected)
