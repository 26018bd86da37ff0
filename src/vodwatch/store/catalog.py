"""Catalog queries: assets (videos) and viewers (names)."""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import Connection, and_, case, func, or_, select

from vodwatch.store.database import upsert
from vodwatch.store.schema import assets, viewers


@dataclass(frozen=True, slots=True)
class Asset:
    asset_id: str
    title: str
    duration_ms: int | None
    is_cataloged: bool
    completion_threshold: int | None = None  # None: the tenant's

    def effective_threshold(self, tenant_threshold: int) -> int:
        return tenant_threshold if self.completion_threshold is None else self.completion_threshold


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
) -> tuple[Asset, bool]:
    """Create or replace a catalog entry (its completion threshold only when given: None
    clears it); the entry as stored, and whether it is new."""
    existing = get_asset(conn, tenant_id, asset_id)
    if completion_threshold is KEEP:
        threshold = None if existing is None else existing.completion_threshold
    else:
        threshold = completion_threshold
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
    )
    changes = {
        "title": statement.excluded.title,
        "title_folded": statement.excluded.title_folded,
        "duration_ms": statement.excluded.duration_ms,
        "is_cataloged": True,
        "updated_at_ms": statement.excluded.updated_at_ms,
    }
    if completion_threshold is not KEEP:
        changes["completion_threshold"] = statement.excluded.completion_threshold
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[assets.c.tenant_id, assets.c.asset_id], set_=changes
        )
    )
    return Asset(asset_id, title, duration_ms, True, threshold), existing is None


def get_asset(conn: Connection, tenant_id: int, asset_id: str) -> Asset | None:
    row = conn.execute(
        select(
            assets.c.asset_id,
            assets.c.title,
            assets.c.duration_ms,
            assets.c.is_cataloged,
            assets.c.completion_threshold,
        ).where(assets.c.tenant_id == tenant_id, assets.c.asset_id == asset_id)
    ).one_or_none()
    return None if row is None else Asset(*row)


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
