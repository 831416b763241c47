"""Typed models of what ordermill POSTs to a connector: the documented order shape and context.

Attributes are snake_case (``order.third_party_order_id``); the JSON keys are the documented
camelCase ones, and ``model_dump()`` / ``model_dump_json()`` write them back in camelCase.

Forward compatibility: unknown keys of the order, its lines, items, assets and addresses are
ignored (a newer ordermill may add some); everything inside a ``data`` object is kept as it came.
``ConnectorRequest.raw`` holds the whole parsed body, unknown keys included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
        frozen=True,
    )


class AssetVersion(_Wire):
    """One version of an asset file: where to download it and when it was made."""

    url: str
    date: datetime


class Asset(_Wire):
    """A file that belongs to an item (a 3D model, a print file, an image…).

    ``url`` is absolute and downloadable: public assets as given, private ones as signed links
    to ordermill that stay valid while the task may still be retried.
    """

    id: str
    url: str
    is_public: bool = True
    versions: tuple[AssetVersion, ...] = ()

    @property
    def latest(self) -> AssetVersion | None:
        """The version with the newest ``date``, or None when the asset lists no versions."""
        return max(self.versions, key=lambda version: version.date, default=None)

    @property
    def download_url(self) -> str:
        """The URL of the latest version, or the asset's own ``url`` when it has no versions."""
        latest = self.latest
        return self.url if latest is None else latest.url


class Item(_Wire):
    """A product or part on an order line; items nest (a kit of parts) and may carry assets."""

    id: str
    data: dict[str, Any] = Field(default_factory=dict)
    tags: tuple[str, ...] = ()
    items: tuple[Item, ...] = ()
    assets: tuple[Asset, ...] = ()
    is_asset: bool = False

    def walk(self) -> Iterator[Item]:
        """This item, then its nested items, depth first."""
        yield self
        for child in self.items:
            yield from child.walk()


class OrderLine(_Wire):
    """One line of the order: a title, a quantity and price, a deadline and its items."""

    order_id: str
    title: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    items: tuple[Item, ...] = ()
    deadline: datetime | None = None
    amount_of_units: int | float = 0
    value_per_unit: int | float = 0


class Address(_Wire):
    """An address of the order; ``addressType`` and ``purpose`` are free text (e.g. shipping)."""

    address_type: str = ""
    purpose: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class Order(_Wire):
    """The order exactly as documented in "Make your own connector".

    ``update_url`` is where the connector POSTs its feedback (see ``send_feedback``); it is
    unique to the task and stays the same across the task's attempts. It is None in a
    subscription's event, which takes no feedback.
    """

    space_key: str
    flow_key: str
    third_party_order_id: str
    update_url: str | None = None
    addresses: tuple[Address, ...] = ()
    data: dict[str, Any] = Field(default_factory=dict)
    order_lines: tuple[OrderLine, ...] = ()

    def all_items(self) -> Iterator[Item]:
        """Every item of every line, nested ones included, depth first."""
        for line in self.order_lines:
            for item in line.items:
                yield from item.walk()

    def all_assets(self) -> Iterator[Asset]:
        """Every asset of every item, in order."""
        for item in self.all_items():
            yield from item.assets


class DeliveryContext(_Wire):
    """ordermill's own part of the body: which order and task this delivery belongs to.

    ``delivery_id`` equals the ``webhook-id`` header: the same on every attempt of the task,
    so it is the receiver's idempotency key.
    """

    order_id: str
    stage_key: str = ""  # empty in a subscription's event
    task_key: str = ""
    delivery_id: str
    subscription_id: str | None = None  # a subscription's event: which subscription
    trigger: dict[str, Any] | None = None  # a failure stage's task: what failed
    amendment: dict[str, Any] | None = None  # a task sent again after an amendment


class _Body(_Wire):
    order: Order
    context: DeliveryContext
    event: dict[str, Any] | None = None


@dataclass(frozen=True)
class ConnectorRequest:
    """A parsed connector request.

    Attributes:
        order: the order in the documented shape.
        context: ordermill's order id, stage, task and delivery id.
        delivery_id: the ``webhook-id`` header (or ``context.delivery_id`` without headers);
            deduplicate on it, a retry of the same task carries the same id.
        attempt: the ``ordermill-attempt`` header (1 for the first try), None when absent.
        timestamp: the signed ``webhook-timestamp`` (UTC), None when not given.
        raw: the whole JSON body as parsed, unknown keys included.
        event: for a subscription's request, the event (``type``, ``at``, ``from``, ``to``,
            ``taskKey``, ...); None for a task's delivery.
    """

    order: Order
    context: DeliveryContext
    delivery_id: str
    attempt: int | None
    timestamp: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    event: dict[str, Any] | None = None
