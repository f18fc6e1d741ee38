"""API keys of creators and merchants (admin token): issue, list, rotate, revoke.

A key is answered once, when issued or rotated; Redis keeps only its SHA-256.
Rotation gives the same key id a new key and the old one stops working at once
(as do the sessions it began); revocation does the same without a new key.
docs/portal.md, "Access".
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from afflux.payouts.deps import AdminDep, ClockDep
from afflux.payouts.errors import ERROR_RESPONSES
from afflux.shared.core.terms import (
    MAX_CREATOR_ID_LENGTH,
    creator_id_problem,
    merchant_id_problem,
)
from afflux.shared.io.http.bodies import NAMES_ONCE_AFTER_ADMIN
from afflux.shared.io.http.principals import AccessStore, KeyRecord
from afflux.shared.io.http.problems import Problem
from afflux.shared.io.http.state import started_dep

router = APIRouter(prefix="/v1/keys", responses=ERROR_RESPONSES, tags=["keys"])
AccessStoreDep = Annotated[AccessStore, Depends(started_dep("access"))]
_MERCHANT_ID = re.compile(r"[A-Za-z0-9_.:@-]+")
# Checked by role in words (``_a_subject_of_its_role``), not by a bare pattern.
Subject = Annotated[str, Field(min_length=1, max_length=MAX_CREATOR_ID_LENGTH)]


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["creator", "merchant"] = Field(description="whose key")
    subject: Subject = Field(
        description="the creator's affiliate_id (as their links take it) or the merchant's id"
        " (at most 64 characters)"
    )

    @field_validator("subject")
    @classmethod
    def _a_subject_of_its_role(cls, subject: str, info: ValidationInfo) -> str:
        """A creator's key is for a creator id links take (up to 200 characters, not only
        dots: their pages' URLs name it); a merchant id is at most 64 characters, as in
        the campaigns' terms."""
        role = info.data.get("role")
        if role == "creator":
            problem = creator_id_problem(subject)
        else:
            problem = merchant_id_problem(subject)
            if problem is None and not _MERCHANT_ID.fullmatch(subject):
                problem = (
                    f"{subject[:100]!r}: a merchant key's id holds ASCII letters, digits and"
                    " _ . : @ - only"
                )
        if problem is not None:
            raise ValueError(problem)
        return subject


class KeyOut(BaseModel):
    key_id: str
    role: str
    subject: str
    created_at: int
    rotated_at: int | None
    revoked_at: int | None


class IssuedKey(KeyOut):
    key: str = Field(description="the key itself: shown only in this answer")


class KeyList(BaseModel):
    keys: list[KeyOut]


def _issued(record: KeyRecord, key: str) -> dict[str, Any]:
    return {**record.public(), "key": key}


def _no_key(key_id: str) -> Problem:
    return Problem(404, "key_id", f"no key {key_id}")


@router.post("", status_code=201, response_model=IssuedKey, dependencies=[NAMES_ONCE_AFTER_ADMIN])
async def issue_key(
    _: AdminDep, store: AccessStoreDep, clock: ClockDep, body: NewKey
) -> dict[str, Any]:
    record, key = await store.issue(body.role, body.subject, clock())
    return _issued(record, key)


@router.get("", response_model=KeyList)
async def list_keys(
    _: AdminDep,
    store: AccessStoreDep,
    role: Literal["creator", "merchant"] | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    return {"keys": [r.public() for r in await store.listed(role, subject)]}


@router.post(
    "/{key_id}/rotate",
    response_model=IssuedKey,
    responses={409: ERROR_RESPONSES[404] | {"description": "the key was revoked"}},
)
async def rotate_key(
    _: AdminDep, store: AccessStoreDep, clock: ClockDep, key_id: str
) -> dict[str, Any]:
    record = await store.get(key_id)
    if record is None:
        raise _no_key(key_id)
    rotated = await store.rotate(key_id, clock())
    if rotated is None:  # revoked: a revoked key stays revoked
        raise Problem(409, "key_id", f"key {key_id} was revoked: issue a new one")
    return _issued(*rotated)


@router.delete("/{key_id}", response_model=KeyOut)
async def revoke_key(
    _: AdminDep, store: AccessStoreDep, clock: ClockDep, key_id: str
) -> dict[str, Any]:
    revoked = await store.revoke(key_id, clock())
    if revoked is None:
        raise _no_key(key_id)
    return revoked.public()
