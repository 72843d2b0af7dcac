"""Data profiling of a source table sample: nulls, distinct values, ranges, shapes, duplicates.

Pure over a text DataFrame (str/None cells); the caller fetches a bounded sample.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

SAMPLE_ROWS = 50_000
NULL_TEXT = "NULL"  # how a null is shown everywhere (templates: the null_cell tag)
TOP = 8
# value_map is offered for low-cardinality label columns only: at most this many distinct
# values, each seen VALUE_MAP_MIN_REPEAT times on average, none longer than
# VALUE_MAP_MAX_LENGTH characters (free text — notes, descriptions — is never mapped).
VALUE_MAP_MAX_DISTINCT = 12
VALUE_MAP_MIN_REPEAT = 5
VALUE_MAP_MAX_LENGTH = 40
# title is offered when the column mixes all-capitals and all-lower-case values and fewer
# than this share of its values are already in mixed case ("Acme LLC", "IBM Global").
TITLE_MAX_CASED_SHARE = 0.5
_DIGITS = re.compile(r"[0-9]+")
_UPPER = re.compile(r"[A-Z]+")
_LOWER = re.compile(r"[a-z]+")
_SPACES = re.compile(r" +")


@dataclass(frozen=True)
class RuleSuggestion:
    """A rule chain to append to a field fed by the column, read off its profile.

    ``steps`` are (rule, params) pairs; ``needs_lookup`` marks a value map whose lookup table
    the user picks when applying it.
    """

    label: str
    steps: tuple[tuple[str, dict], ...]
    needs_lookup: bool = False

    def __str__(self) -> str:
        return self.label


@dataclass
class ColumnProfile:
    name: str
    rows: int
    nulls: int
    distinct: int
    minimum: str | None
    maximum: str | None
    max_length: int
    top_values: list[tuple[str, int]]
    shapes: list[tuple[str, int]]
    shape_count: int
    padded: int  # values with leading/trailing or doubled spaces
    mixed_case: bool
    cased_share: float = 0.0  # values (with letters) holding both upper- and lower-case ones
    digit_share: float = 0.0  # digits among the values' non-space characters
    spaced_share: float = 0.0  # values with a space inside (after trimming)
    median_length: float = 0.0
    suggestions: list[RuleSuggestion] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)  # distinct values, filled by callers

    @property
    def null_pct(self) -> float:
        return 100.0 * self.nulls / self.rows if self.rows else 0.0


@dataclass
class TableProfile:
    table: str
    rows: int
    sampled: bool
    columns: list[ColumnProfile]
    duplicate_keys: list[tuple[str, int]]
    key: tuple[str, ...]
    duplicate_total: int = 0  # values held by more than one row (duplicate_keys: the first)


def value_shape(value: str) -> str:
    """The value's shape: digit runs → 9, upper-case runs → A, lower-case runs → a,
    punctuation kept, space runs collapsed ("(555) 123-4567" → "(9) 9-9")."""
    shape = _DIGITS.sub("9", value)
    shape = _UPPER.sub("A", shape)
    shape = _LOWER.sub("a", shape)
    shape = re.sub(r"(Aa)+", "Aa", shape)
    return _SPACES.sub(" ", shape)


def _numeric_key(values: pd.Series) -> pd.Series | None:
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers if numbers.notna().all() else None


def _min_max(values: pd.Series) -> tuple[str | None, str | None]:
    if values.empty:
        return None, None
    numbers = _numeric_key(values)
    if numbers is not None:
        return str(values.iloc[int(numbers.argmin())]), str(values.iloc[int(numbers.argmax())])
    return str(values.min()), str(values.max())


def profile_column(name: str, series: pd.Series) -> ColumnProfile:
    """Profile one text column (pure)."""
    present = series.dropna().astype(str)
    counts = present.value_counts()
    shapes: Counter[str] = Counter()
    for value, n in counts.items():
        shapes[value_shape(value)] += int(n)
    minimum, maximum = _min_max(present)
    padded = int((present.str.strip() != present).sum() + present.str.contains("  ").sum())
    letters = present[present.str.contains("[A-Za-z]", regex=True)]
    upper, lower = letters.str.isupper(), letters.str.islower()
    mixed = bool(len(letters)) and upper.any() and lower.any()
    cased = float((~upper & ~lower).mean()) if len(letters) else 0.0
    stripped = present.str.strip()
    chars = int(stripped.str.replace(" ", "", regex=False).str.len().sum())
    digits = int(stripped.str.count(r"[0-9]").sum())
    profile = ColumnProfile(
        name=name,
        rows=len(series),
        nulls=int(series.isna().sum()),
        distinct=len(counts),
        minimum=minimum,
        maximum=maximum,
        max_length=int(present.str.len().max()) if len(present) else 0,
        top_values=[(str(v), int(n)) for v, n in counts.head(TOP).items()],
        shapes=shapes.most_common(TOP),
        shape_count=len(shapes),
        padded=padded,
        mixed_case=mixed,
        cased_share=cased,
        digit_share=digits / chars if chars else 0.0,
        spaced_share=float(stripped.str.contains(" ", regex=False).mean()) if len(present) else 0.0,
        median_length=float(stripped.str.len().median()) if len(present) else 0.0,
    )
    profile.suggestions = suggest_rules(profile)
    return profile


_DATE_SHAPES = {
    "9-9-9 9:9": "%Y-%m-%d %H:%M",
    "9-9-9": "%Y-%m-%d",
    "9/9/9": "%m/%d/%Y",
    "9.9.9": "%d.%m.%Y",
    "Aa 9 9": "%b %d %Y",
    "9-9-9A9:9:9": "%Y-%m-%dT%H:%M:%S",
    "9-9-9 9:9:9": "%Y-%m-%d %H:%M:%S",
}


def code_like(profile: ColumnProfile) -> str | None:
    """Why the column holds codes rather than words (no title case for it), else None:
    digit-heavy (phones, ids, zips), e-mail addresses, or short tokens without spaces (state,
    currency and country codes). Pure, decided by the profile alone."""
    if profile.digit_share >= 0.4:
        return "digit-heavy"
    if any("@" in s for s, _ in profile.shapes):
        return "e-mail addresses"
    if profile.median_length and profile.median_length <= 3 and profile.spaced_share < 0.05:
        return "short codes"
    return None


def _date_formats(profile: ColumnProfile, shapes: list[str]) -> list[str]:
    lowered = profile.name.lower()
    if "phone" in lowered or "tel" in lowered:
        return []
    return [_DATE_SHAPES[s] for s in shapes if s in _DATE_SHAPES]


def low_cardinality(profile: ColumnProfile) -> bool:
    """A column of a few short labels repeated (statuses, codes): what a value map is for.
    Pure; the thresholds are VALUE_MAP_MAX_DISTINCT, VALUE_MAP_MIN_REPEAT, VALUE_MAP_MAX_LENGTH."""
    present = profile.rows - profile.nulls
    return (
        0 < profile.distinct <= VALUE_MAP_MAX_DISTINCT
        and present >= VALUE_MAP_MIN_REPEAT * profile.distinct
        and profile.rows > 50
        and profile.max_length <= VALUE_MAP_MAX_LENGTH
    )


def suggest_rules(profile: ColumnProfile) -> list[RuleSuggestion]:
    """Rule chains read off a column's shapes, case and character mix (pure)."""
    out: list[RuleSuggestion] = []
    shapes = [s for s, _ in profile.shapes]
    lowered = profile.name.lower()
    named_phone = "phone" in lowered or "tel" in lowered
    date_formats = _date_formats(profile, shapes)
    if len(date_formats) >= 2 or (date_formats and "date" in lowered):
        output = "datetime" if any("%H" in f for f in date_formats) else "date"
        out.append(
            RuleSuggestion(
                "parse_date with formats: " + ", ".join(date_formats),
                (("parse_date", {"formats": date_formats, "output": output}),),
            )
        )
    digit_shapes = [s for s in shapes if s.count("9") >= 2 and not re.search(r"[Aa@]", s)]
    if profile.shape_count >= 2 and not date_formats and (named_phone or len(digit_shapes) >= 3):
        out.append(
            RuleSuggestion(
                f"phone_format ({profile.shape_count} phone shapes)", (("phone_format", {}),)
            )
        )
    emails = "@" in "".join(shapes) or "email" in lowered
    if emails:
        out.append(RuleSuggestion("email (trim, lower-case, validate)", (("email", {}),)))
    if profile.padded and not emails:
        out.append(
            RuleSuggestion(
                f"trim ({profile.padded} values with extra spaces)",
                (("trim", {"collapse_inner": True}),),
            )
        )
    code = code_like(profile)
    if profile.mixed_case and not date_formats and code == "short codes":
        out.append(RuleSuggestion("upper (short codes in mixed case)", (("upper", {}),)))
    elif (
        profile.mixed_case
        and not date_formats
        and code is None
        and profile.cased_share < TITLE_MAX_CASED_SHARE
    ):
        out.append(RuleSuggestion("title (mixed upper/lower case)", (("title", {}),)))
    if low_cardinality(profile) and not date_formats:
        out.append(
            RuleSuggestion(
                f"value_map through a lookup table ({profile.distinct} distinct values)",
                (("value_map", {"on_missing": "fail"}),),
                needs_lookup=True,
            )
        )
    return out


def duplicate_summary(
    frame: pd.DataFrame, columns: tuple[str, ...] | list[str], *, limit: int = 20
) -> tuple[list[tuple[str, int]], int]:
    """The first ``limit`` values of ``columns`` (joined with " | ", a null shown as NULL_TEXT)
    held by more than one row, most first, and how many such values there are; rows with every
    chosen column null are left out. Pure; unknown columns are ignored."""
    usable = [c for c in columns if c in frame.columns]
    if not usable or frame.empty:
        return [], 0
    part = frame[usable]
    part = part[part.notna().any(axis=1)]
    joined = part.astype(object).where(part.notna(), NULL_TEXT).astype(str).agg(" | ".join, axis=1)
    counts = joined.value_counts()
    repeated = counts[counts > 1]
    return [(str(k), int(n)) for k, n in repeated.head(limit).items()], len(repeated)


def duplicate_candidates(
    frame: pd.DataFrame, columns: tuple[str, ...] | list[str], *, limit: int = 20
) -> list[tuple[str, int]]:
    """The values of ``duplicate_summary`` (pure)."""
    return duplicate_summary(frame, columns, limit=limit)[0]


def profile_frame(
    table: str, frame: pd.DataFrame, *, key: tuple[str, ...] = (), sampled: bool = False
) -> TableProfile:
    """Profile every column of a text frame; duplicate candidates on ``key`` (pure)."""
    columns = [profile_column(str(c), frame[c]) for c in frame.columns]
    usable = tuple(k for k in key if k in frame.columns)
    dupes, total = duplicate_summary(frame, usable)
    return TableProfile(table, len(frame), sampled, columns, dupes, usable, total)


def bar_chart_svg(items: list[tuple[str, int]], *, width: int = 320, bar: int = 14) -> str:
    """A horizontal bar chart as inline SVG markup (labels escaped; no script)."""
    from django.utils.html import escape

    if not items:
        return ""
    top = max(n for _, n in items) or 1
    label_w = 120
    height = len(items) * (bar + 4)
    parts = [
        f'<svg class="bars" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, n) in enumerate(items):
        y = i * (bar + 4)
        w = max(1, int((width - label_w - 50) * n / top))
        text = escape(label if len(label) <= 18 else label[:17] + "…")
        parts.append(
            f'<text x="0" y="{y + bar - 3}" class="bl">{text}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar}" rx="2"/>'
            f'<text x="{label_w + w + 4}" y="{y + bar - 3}" class="bn">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
