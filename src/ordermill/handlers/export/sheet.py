"""The production sheet: one PDF with what the workshop needs to make an order.

Order and third-party ids, the deadline, the shipping address, a QR code to the order's page in
the UI, and every order line with its items (nested) — quantity, tags, item data and files.
Rendering is CPU work: call ``render_sheet`` in a thread.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ordermill.flows.order import earliest_deadline, parse_instant

QR_SIZE = 32 * mm
_STYLES = getSampleStyleSheet()
BODY = ParagraphStyle("sheet-body", parent=_STYLES["BodyText"], fontSize=9, leading=11)
HEAD = ParagraphStyle("sheet-head", parent=BODY, fontName="Helvetica-Bold")
GRID = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


@dataclass(frozen=True)
class SheetOrder:
    """What the sheet shows about the order besides its body."""

    order_id: str
    space_key: str
    flow_key: str
    order_url: str  # the UI's page of the order, behind the QR code


def text(value: Any) -> Paragraph:
    return Paragraph(escape(str(value)).replace("\n", "<br/>"), BODY)


def when(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return "—"
    try:
        return parse_instant(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


def data_lines(data: Any) -> str:
    """``key: value`` per line; nested values as compact JSON."""
    if not isinstance(data, Mapping) or not data:
        return ""
    return "\n".join(
        f"{key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in data.items()
    )


def qr_code(url: str) -> Drawing:
    """A QR code of ``url``, drawn with reportlab's own encoder (no image library)."""
    widget = QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(
        QR_SIZE, QR_SIZE, transform=[QR_SIZE / (x1 - x0), 0, 0, QR_SIZE / (y1 - y0), 0, 0]
    )
    drawing.add(widget)
    return drawing


def shipping_address(order: Mapping[str, Any]) -> str:
    for address in order.get("addresses") or []:
        if isinstance(address, Mapping) and address.get("purpose") == "shipping":
            return data_lines(address.get("data")) or "—"
    return "—"


def _rows(items: Sequence[Any], units: Any, depth: int = 0) -> Iterator[list[Any]]:
    for item in items:
        if not isinstance(item, Mapping):
            continue
        name = ("- " * depth) + str(item.get("id", ""))
        if item.get("isAsset"):
            name += " (asset)"
        files = ", ".join(str(a.get("id", "")) for a in item.get("assets") or [])
        style = ParagraphStyle(f"item-{depth}", parent=BODY, leftIndent=depth * 8)
        yield [
            Paragraph(escape(name), style),
            text(units),
            text(", ".join(str(tag) for tag in item.get("tags") or [])),
            text(data_lines(item.get("data"))),
            text(files),
        ]
        yield from _rows(item.get("items") or [], units, depth + 1)


def line_flowables(line: Mapping[str, Any]) -> list[Any]:
    heading = f"Order line {line.get('orderId', '')}"
    if line.get("title"):
        heading += f" — {line['title']}"
    facts = f"Units: {line.get('amountOfUnits', 0)} · Deadline: {when(line.get('deadline'))}" + (
        f"\n{data_lines(line.get('data'))}" if line.get("data") else ""
    )
    flowables: list[Any] = [Paragraph(escape(heading), _STYLES["Heading3"]), text(facts)]
    rows = list(_rows(line.get("items") or [], line.get("amountOfUnits", 0)))
    if rows:
        header = [Paragraph(h, HEAD) for h in ("Item", "Qty", "Tags", "Data", "Files")]
        widths = [45 * mm, 12 * mm, 28 * mm, 60 * mm, 30 * mm]
        table = Table([header, *rows], colWidths=widths, repeatRows=1)
        table.setStyle(GRID)
        flowables += [Spacer(1, 2 * mm), table]
    return [*flowables, Spacer(1, 5 * mm)]


def render_sheet(sheet: SheetOrder, order: Mapping[str, Any]) -> bytes:
    """The production sheet as PDF bytes (the same order gives the same bytes)."""
    deadline = earliest_deadline(order)
    facts = [
        ("Order", sheet.order_id),
        ("Third-party order id", order.get("thirdPartyOrderId", "")),
        ("Space / flow", f"{sheet.space_key} / {sheet.flow_key}"),
        ("Deadline", deadline.strftime("%Y-%m-%d %H:%M UTC") if deadline else "—"),
        ("Ship to", shipping_address(order)),
        ("Order page", sheet.order_url),
    ]
    fact_table = Table(
        [[Paragraph(escape(name), HEAD), text(value)] for name, value in facts],
        colWidths=[35 * mm, 100 * mm],
    )
    fact_table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    top = Table([[fact_table, qr_code(sheet.order_url)]], colWidths=[140 * mm, 35 * mm])
    top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story: list[Any] = [
        Paragraph(
            escape(f"Production sheet {order.get('thirdPartyOrderId', '')}"), _STYLES["Title"]
        ),
        top,
        Spacer(1, 6 * mm),
    ]
    for line in order.get("orderLines") or []:
        if isinstance(line, Mapping):
            story += line_flowables(line)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Production sheet {order.get('thirdPartyOrderId', '')}",
        author="ordermill",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        invariant=1,  # no timestamp or random id inside: a re-export gives the same bytes
    )
    document.build(story)
    return buffer.getvalue()
