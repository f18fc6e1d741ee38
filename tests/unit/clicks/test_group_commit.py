"""Group commit: clicks submitted together share one fsync, each answered only once it is on
disk; a full log refuses clicks instead of answering for clicks it did not keep."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer

from afflux.clicks.shipper import ClickShipper
from afflux.clicks.wal import WriteAheadLog

pytestmark = pytest.mark.unit

NO_BROKER = cast(AIOKafkaProducer, None)  # the flusher never touches the producer


def shipper_for(wal: WriteAheadLog, max_bytes: int, fsyncs: list[float]) -> ClickShipper:
    return ClickShipper(
        NO_BROKER,
        "clicks",
        4,
        wal,
        max_bytes=max_bytes,
        window_s=0.002,
        retry_interval_s=1.0,
        send_timeout_s=1.0,
        on_fsync=fsyncs.append,
    )


def event(n: int) -> dict[str, Any]:
    return {"event_id": f"e{n}", "click_id": f"c{n}"}


async def test_clicks_submitted_together_share_one_fsync_and_are_on_disk(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    fsyncs: list[float] = []
    shipper = shipper_for(wal, 1 << 20, fsyncs)
    flusher = asyncio.create_task(shipper.flush_forever())
    try:
        groups = [shipper.submit(f"v{n}", event(n)) for n in range(100)]
        assert not any(group.done() for group in groups)  # nothing answered before the fsync
        assert await asyncio.gather(*groups) == [True] * 100
        assert len(fsyncs) == 1
        batch, _ = wal.read(wal.cursor, 1 << 20)
        assert [key for key, _ in batch] == [f"v{n}".encode() for n in range(100)]
        assert shipper.unsent == 100
    finally:
        flusher.cancel()
        wal.close()


async def test_a_full_log_refuses_the_click_that_would_exceed_it(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    shipper = shipper_for(wal, 100, [])
    flusher = asyncio.create_task(shipper.flush_forever())
    try:
        kept = shipper.submit("v1", event(1))  # about 40 bytes: fits
        refused = shipper.submit("v2", {**event(2), "pad": "x" * 60})  # would pass 100 bytes
        assert await refused is False
        assert await kept is True
        assert shipper.unsent == 1
    finally:
        flusher.cancel()
        wal.close()


class RefusingLog(WriteAheadLog):
    """A click log whose disk refuses writes while ``refusing`` is set."""

    refusing = False

    def append(self, data: bytes) -> None:
        if self.refusing:
            raise OSError(30, "Read-only file system")
        super().append(data)


async def test_a_log_refusing_writes_answers_unrecorded_and_says_so_until_it_writes_again(
    tmp_path: Path,
) -> None:
    """A read-only or failing disk dropped every click while /healthz said nothing; the
    click_log check reads ``log_ok``."""
    wal = RefusingLog(tmp_path)
    shipper = shipper_for(wal, 1 << 20, [])
    flusher = asyncio.create_task(shipper.flush_forever())
    try:
        assert shipper.log_ok
        wal.refusing = True
        assert await shipper.submit("v1", event(1)) is False
        assert not shipper.log_ok
        wal.refusing = False
        assert await shipper.submit("v2", event(2)) is True
        assert shipper.log_ok
        assert shipper.unsent == 1
    finally:
        flusher.cancel()
        wal.close()
