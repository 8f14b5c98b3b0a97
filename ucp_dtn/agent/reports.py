"""Bundle status reports (RFC 9171 §6.1.1): generated when a bundle's flags ask for them.

A bundle asks for reports with the four "status report request" flags (§4.2.3); the agent
generates one at reception (§5.6 step 2), forwarding (§5.4 step 5), delivery (§5.7 step 2) and
deletion (§5.10). Each report is an administrative-record bundle from this node's ID to the
subject's report-to endpoint, built by :func:`bpv7.admin.build_status_report_bundle`, and then
travels like any bundle of ours (stored, routed, forwarded).

Reports are best effort: a report that cannot be stored (store full) is logged and dropped — the
subject bundle's fate never depends on its report.
"""

from __future__ import annotations

import logging

from bpv7 import Bundle, BundleFlags, EncodeError
from bpv7.admin import StatusKind, StatusReportReason, build_status_report_bundle
from ucp_dtn.store import StoreError

from .contracts import Originator

__all__ = ["REPORT_FLAGS", "StatusItem", "StatusReporter", "report_flags"]

logger = logging.getLogger(__name__)

StatusItem = StatusKind
"""The statuses a bundle may ask reports for: ``RECEIVED``, ``FORWARDED``, ``DELIVERED``,
``DELETED`` (the four status assertions of RFC 9171 §6.1.1)."""

REPORT_FLAGS: dict[StatusKind, BundleFlags] = {
    # RFC 9171 §4.2.3 bits 14, 16, 17 and 18: "Request reporting of bundle reception /
    # forwarding / delivery / deletion."
    StatusKind.RECEIVED: BundleFlags.REPORT_RECEPTION,
    StatusKind.FORWARDED: BundleFlags.REPORT_FORWARDING,
    StatusKind.DELIVERED: BundleFlags.REPORT_DELIVERY,
    StatusKind.DELETED: BundleFlags.REPORT_DELETION,
}
"""The bundle processing flag that requests each kind of report."""

_REPORT_BITS = {kind: int(flag) for kind, flag in REPORT_FLAGS.items()}


def report_flags(items: frozenset[StatusKind] | set[StatusKind]) -> BundleFlags:
    """The bundle processing flags requesting reports for ``items``."""
    flags = BundleFlags(0)
    for item in items:
        flags |= REPORT_FLAGS[StatusKind(item)]
    return flags


class StatusReporter:
    """Creates status reports for one agent."""

    def __init__(self, core: Originator) -> None:
        self._core = core

    async def report(
        self,
        subject: Bundle,
        kind: StatusKind,
        reason: int = StatusReportReason.NO_ADDITIONAL_INFORMATION,
        *,
        force: bool = False,
    ) -> bool:
        """Send a ``kind`` report about ``subject`` if it asked for one (or ``force``: a block
        asked for it, RFC 9171 §5.6 step 4); ``True`` if sent."""
        primary = subject.primary
        if not force and not int(primary.flags) & _REPORT_BITS[kind]:
            return False
        # RFC 9171 §4.2.3: for an administrative record or an anonymous bundle "all status
        # report request flag values MUST be zero"; and the null report-to has no members.
        if primary.is_admin_record or primary.source.is_null or primary.report_to.is_null:
            return False
        core = self._core
        creation = core.new_creation()
        try:
            bundle = build_status_report_bundle(
                subject,
                source=core.node_id,
                kind=kind,
                reason=reason,
                now_dtn_ms=creation.time_ms,
                sequence=creation.sequence,
            )
        except EncodeError as exc:
            logger.warning("cannot build a %s report: %s", kind.name.lower(), exc)
            return False
        try:
            await core.admit(bundle, bundle.encode(), previous=None)
        except StoreError as exc:
            logger.warning(
                "dropping the %s report for %s: %s", kind.name.lower(), primary.source, exc
            )
            return False
        core.counters.reports_sent += 1
        core.counters.created += 1
        return True
