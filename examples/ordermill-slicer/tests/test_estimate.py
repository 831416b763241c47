"""The slicer handler, tested with ordermill's public fakes: no server, no database."""

from __future__ import annotations

import pytest
from ordermill_slicer import PrintTimeEstimate

from ordermill.errors import PermanentError
from ordermill.handlers.base import Succeeded
from ordermill.testing import make_context, sample_order


def order_with_volume(volume: object) -> dict[str, object]:
    order = sample_order()
    order["orderLines"][0]["items"][0]["data"] = {"volumeCm3": volume}
    return order


async def test_the_estimate_counts_every_unit_of_every_printed_item() -> None:
    handler = PrintTimeEstimate()
    ctx = make_context(handler, {"minutesPerCm3": 10}, order=order_with_volume(2.5))

    outcome = await handler.run(ctx)

    # (10 min setup + 2.5 cm³ × 10 min/cm³) × 2 units
    assert outcome == Succeeded(
        {"printMinutes": 70.0, "items": [{"itemId": "item-1", "minutes": 70.0}]}
    )


async def test_an_item_without_a_volume_fails_the_task_naming_it() -> None:
    handler = PrintTimeEstimate()
    ctx = make_context(handler, {}, order=order_with_volume(None))

    with pytest.raises(PermanentError, match="item 'item-1' of order line 'WEB-1001-1'"):
        await handler.run(ctx)
