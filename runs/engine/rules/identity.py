"""Identity and masking rules: deterministic UUIDs from keys, hashes, masks."""

from __future__ import annotations

import hashlib
import uuid
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .core import (
    _EMPTY,
    _HEX,
    TEXT,
    Param,
    RuleContext,
    RuleParamError,
    RuleType,
    StepResult,
    _arrow,
    _series,
    as_text,
    rule_type,
    to_python,
)


def _uuid_namespace(namespace: str, scope: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"migration-planner:{namespace}/{scope}")


def _uuid_bytes_to_text(raw: bytes, count: int) -> pa.Array:
    """Format ``count`` 16-byte digests as version-5 UUID strings, vectorised with numpy."""
    a = np.frombuffer(raw, dtype=np.uint8).reshape(count, 16).copy()
    a[:, 6] = (a[:, 6] & 0x0F) | 0x50  # version 5
    a[:, 8] = (a[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = np.empty((count, 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX[a >> 4]
    hexed[:, 1::2] = _HEX[a & 0x0F]
    out = np.full((count, 36), ord("-"), dtype=np.uint8)
    for dst, src in ((0, 0), (9, 8), (14, 12), (19, 16), (24, 20)):
        width = 12 if dst == 24 else (8 if dst == 0 else 4)
        out[:, dst : dst + width] = hexed[:, src : src + width]
    offsets = np.arange(0, 36 * (count + 1), 36, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())
    )


def uuid5_texts(namespace_uuid: uuid.UUID, names: list[str | None]) -> pa.Array:
    """``str(uuid.uuid5(namespace_uuid, name))`` per name as an arrow array (None stays null)."""
    base = hashlib.sha1(namespace_uuid.bytes, usedforsecurity=False)
    null = bytes(16)
    digests = bytearray()
    nulls = []
    for name in names:
        if name is None:
            nulls.append(len(digests))
            digests += null
            continue
        h = base.copy()
        h.update(name.encode())
        digests += h.digest()[:16]
    texts = _uuid_bytes_to_text(bytes(digests), len(names))
    if not nulls:
        return texts
    is_null = np.zeros(len(names), dtype=bool)
    is_null[np.array(nulls) // 16] = True
    return pc.if_else(pa.array(is_null), pa.scalar(None, pa.large_string()), texts)


def _key_texts(keys: pd.Series) -> list[str | None]:
    """``to_python(keys).tolist()``, taken as it is when the Series already holds only
    ``str`` and ``None`` (the transform's source keys: ~2.5 ms less a batch). Pure."""
    names = keys.tolist()
    if keys.dtype == object and set(map(type, names)) <= {str, type(None)}:
        return names
    return to_python(keys).tolist()


def _uuid_from_key(values: pd.Series | pd.DataFrame, params: dict, ctx: RuleContext) -> StepResult:
    if params["from"] == "value":
        names = to_python(values).tolist()
    elif ctx.source_keys is None:
        raise RuleParamError("from", "no source keys available to derive UUIDs from")
    else:
        names = _key_texts(ctx.source_keys)
    texts = uuid5_texts(_uuid_namespace(ctx.namespace, params["scope"]), names)
    return StepResult(_series(texts, values.index))


def _hash(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    text = as_text(values)
    salt = params["salt"].encode()
    digests = [
        None if v is None else (hashlib.sha256(salt + v.encode()).hexdigest() if v else "")
        for v in to_python(text).tolist()
    ]
    return StepResult(pd.Series(digests, index=text.index, dtype=TEXT))


def _mask(values: pd.Series, params: dict, ctx: RuleContext) -> StepResult:
    arr = _arrow(values)
    keep = params["keep_last"]
    char = (params["mask_char"] or "*")[0]
    lengths = pc.utf8_length(arr)
    short = pc.less_equal(lengths, keep)
    hidden = pc.if_else(short, lengths, pc.subtract(lengths, keep))
    stars = pc.binary_repeat(pa.scalar(char, pa.large_string()), hidden)
    tail = pc.utf8_slice_codeunits(arr, start=-keep) if keep else pc.utf8_slice_codeunits(arr, 0, 0)
    tail = pc.if_else(short, pa.scalar("", pa.large_string()), tail)
    return StepResult(_series(pc.binary_join_element_wise(stars, tail, _EMPTY), values.index))


# --------------------------------------------------------------------------- registered here

_NULLS = {
    "uuid_from_key": "Ignores the input unless hashing the value, where null stays null.",
    "hash": "Null stays null; empty strings stay empty.",
    "mask": "Null stays null; empty strings stay empty.",
}
_rule = partial(rule_type, _NULLS)

RULES: tuple[RuleType, ...] = (
    _rule(
        "uuid_from_key",
        "UUID from key",
        "Derives a deterministic UUID (version 5) from the row's source key and the plan.",
        _uuid_from_key,
        Param(
            "scope",
            "str",
            default="",
            help="Extra namespace text, e.g. the entity name, so equal keys differ.",
        ),
        Param(
            "from",
            "choice",
            default="source_key",
            choices=("source_key", "value"),
            help="Hash the row's source key, or the incoming value.",
        ),
        accepts_frame=True,
    ),
    _rule(
        "hash",
        "Hash",
        "Replaces the value with its SHA-256 hex digest.",
        _hash,
        Param("salt", "str", default="", help="Text prepended before hashing."),
    ),
    _rule(
        "mask",
        "Mask",
        "Masks all but the last few characters of the value.",
        _mask,
        Param(
            "keep_last",
            "int",
            default=4,
            min_value=0,
            help="Characters left visible; shorter values are masked completely.",
        ),
        Param("mask_char", "str", default="*", help="Masking character."),
    ),
)
