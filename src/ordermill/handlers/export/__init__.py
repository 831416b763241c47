"""The ``export`` handler: an order's production package (sheet, manifest, ZIP) as assets.

``handler`` runs the task; ``layout`` places files and writes the manifest and the ZIP;
``sheet`` renders the production sheet; ``fetch`` brings item files in through the network guard.
"""

from ordermill.handlers.export.handler import Export, ExportPayload

__all__ = ["Export", "ExportPayload"]
