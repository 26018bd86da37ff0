"""Catalog queries: assets (videos) and viewers (names)."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import Connection, and_, case, func, or_, select

from vodwatch.attention import Defaults, Rules, rules_for
from vodwatch.store.database import upsert
from vodwatch.store.schema import assets, viewers

SecondsRanges = tuple[tuple[float, float], ...]  # as written in the PUT


@dataclass(frozen=True, slots=True)
class Asset:
    asset_id: str
    title: str
    duration_ms: int | None
    is_cataloged: bool
    completion_threshold: int | None = None  # None: the tenant's
    # The video's own completion rules (SPEC §10); None: the tenant's (no required ranges).
    required_ranges: SecondsRanges | None = None
    max_rate: float | None = None
    visible_only: bool | None = None

    def effective_threshold(self, tenant_threshold: int) -> int:
        return tenant_threshold if self.completion_threshold is None else self.completion_threshold

    def effective_rules(self, defaults: Defaults) -> Rules:
        return rules_for(
            defaults,
            self.completion_threshold,
            self.required_ranges,
            self.max_rate,
            self.visible_only,
        )


def effective_rules(asset: Asset | None, defaults: Defaults) -> Rules:
    """The rules in force for a video (one the catalog does not know: the tenant's)."""
    return asset.effective_rules(defaults) if asset is not None else rules_for(defaults)


def rules_json(asset: Asset | None, defaults: Defaults) -> dict[str, object]:
    """``effectiveRules`` as GET media shows them: required ranges in seconds, as written."""
    rules = effective_rules(asset, defaults)
    return {
        "threshold": rules.threshold,
        "requiredRanges": [list(r) for r in (asset.required_ranges if asset else None) or ()],
        "maxRate": rules.max_rate,
        "visibleOnly": rules.visible_only,
    }


def stored_rules(
    defaults: Defaults,
    threshold: int | None,
    required_ranges: str | None,
    max_rate: float | None,
    visible_only: object,
) -> Rules:
    """A video's rules in force from its catalog columns as stored (ranges as JSON, the
    boolean as the driver gives it: SQLite says 0 or 1)."""
    return rules_for(
        defaults,
        threshold,
        decode_ranges(required_ranges),
        max_rate,
        None if visible_only is None else bool(visible_only),
    )


def encode_ranges(ranges: SecondsRanges | None) -> str | None:
    return None if ranges is None else json.dumps([list(r) for r in ranges])


def decode_ranges(text: str | None) -> SecondsRanges | None:
    return None if text is None else tuple((start, end) for start, end in json.loads(text))


RULE_COLUMNS = ("completion_threshold", "required_ranges", "max_rate", "visible_only")


class Keep(Enum):
    """A field left as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class AssetClaim:
    """What a beacon says about a video that may not be in the catalog yet."""

    asset_id: str
    title: str
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class ViewerName:
    user_id: str
    user_name: str | None
    at_ms: int  # when this name was true: later names win


def fold_title(title: str) -> str:
    """The form titles are searched in: Unicode case folding, same on every backend."""
    return title.casefold()


def put_asset(
    conn: Connection,
    tenant_id: int,
    asset_id: str,
    title: str,
    duration_ms: int,
    now_ms: int,
    completion_threshold: int | Keep | None = KEEP,
    rules: Mapping[str, object] | None = None,
) -> tuple[Asset, bool]:
    """Create or replace a catalog entry (its completion threshold and the ``rules`` given by
    column name, e.g. ``{"max_rate": 2.0}``, only when given: None clears one); the entry as
    stored, and whether it is new."""
    existing = get_asset(conn, tenant_id, asset_id)
    given: dict[str, object] = dict(rules or {})
    if completion_threshold is not KEEP:
        given["completion_threshold"] = completion_threshold
    if not given.keys() <= set(RULE_COLUMNS):
        raise ValueError(f"not a rule: {sorted(given.keys() - set(RULE_COLUMNS))}")
    values = {
        name: given[name]
        if name in given
        else (None if existing is None else getattr(existing, name))
        for name in RULE_COLUMNS
    }
    threshold = values["completion_threshold"]
    statement = upsert(conn, assets).values(
        tenant_id=tenant_id,
        asset_id=asset_id,
        title=title,
        title_folded=fold_title(title),
        duration_ms=duration_ms,
        is_cataloged=True,
        created_at_ms=now_ms,
        updated_at_ms=now_ms,
        completion_threshold=threshold,
        required_ranges=encode_ranges(values["required_ranges"]),  # type: ignore[arg-type]
        max_rate=values["max_rate"],
        visible_only=values["visible_only"],
    )
    changes = {
        "title": statement.excluded.title,
        "title_folded": statement.excluded.title_folded,
        "duration_ms": statement.excluded.duration_ms,
        "is_cataloged": True,
        "updated_at_ms": statement.excluded.updated_at_ms,
    }
    for name in given:
        changes[name] = getattr(statement.excluded, name)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[assets.c.tenant_id, assets.c.asset_id], set_=changes
        )
    )
    saved = Asset(
        asset_id,
        title,
        duration_ms,
        True,
        threshold,  # type: ignore[arg-type]
        values["required_ranges"],  # type: ignore[arg-type]
        values["max_rate"],  # type: ignore[arg-type]
        values["visible_only"],  # type: ignore[arg-type]
    )
    return saved, existing is None


def get_asset(conn: Connection, tenant_id: int, asset_id: str) -> Asset | None:
    row = conn.execute(
        select(
            assets.c.asset_id,
            assets.c.title,
            assets.c.duration_ms,
            assets.c.is_cataloged,
            assets.c.completion_threshold,
            assets.c.required_ranges,
            assets.c.max_rate,
            assets.c.visible_only,
        ).where(assets.c.tenant_id == tenant_id, assets.c.asset_id == asset_id)
    ).one_or_none()
    if row is None:
        return None
    return Asset(
        *row[:5],
        required_ranges=decode_ranges(row.required_ranges),
        max_rate=row.max_rate,
        visible_only=None if row.visible_only is None else bool(row.visible_only),
    )


def register_assets(
    conn: Connection, tenant_id: int, claims: Sequence[AssetClaim], now_ms: int
) -> None:
    """Add videos first seen in beacons; fill in a missing title or duration of one that is
    not in the catalog. A catalog entry (``put_asset``) is never changed by a beacon."""
    if not claims:
        return
    statement = upsert(conn, assets)
    current = assets.c
    is_title_missing = current.title == ""
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[current.tenant_id, current.asset_id],
            set_={
                "title": case((is_title_missing, statement.excluded.title), else_=current.title),
                "title_folded": case(
                    (is_title_missing, statement.excluded.title_folded),
                    else_=current.title_folded,
                ),
                "duration_ms": func.coalesce(current.duration_ms, statement.excluded.duration_ms),
                "updated_at_ms": statement.excluded.updated_at_ms,
            },
            where=and_(
                ~current.is_cataloged,
                or_(
                    and_(is_title_missing, statement.excluded.title != ""),
                    and_(
                        current.duration_ms.is_(None),
                        statement.excluded.duration_ms.is_not(None),
                    ),
                ),
            ),
        ),
        [
            {
                "tenant_id": tenant_id,
                "asset_id": claim.asset_id,
                "title": claim.title,
                "title_folded": fold_title(claim.title),
                "duration_ms": claim.duration_ms,
                "is_cataloged": False,
                "created_at_ms": now_ms,
                "updated_at_ms": now_ms,
            }
            for claim in sorted(claims, key=lambda claim: claim.asset_id)
        ],
    )


def record_viewer_names(conn: Connection, tenant_id: int, names: Sequence[ViewerName]) -> None:
    """Add viewers first seen in beacons and keep the latest reported ``userName``."""
    if not names:
        return
    statement = upsert(conn, viewers)
    current = viewers.c
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[current.tenant_id, current.user_id],
            set_={
                "user_name": statement.excluded.user_name,
                "name_at_ms": statement.excluded.name_at_ms,
            },
            where=and_(
                statement.excluded.user_name != "",
                current.user_name != statement.excluded.user_name,
                current.name_at_ms <= statement.excluded.name_at_ms,
            ),
        ),
        [
            {
                "tenant_id": tenant_id,
                "user_id": name.user_id,
                "user_name": name.user_name or "",
                "name_at_ms": name.at_ms if name.user_name else 0,
            }
            for name in sorted(names, key=lambda name: name.user_id)
        ],
    )
