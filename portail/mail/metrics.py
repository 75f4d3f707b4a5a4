"""Prometheus metrics of the mail queue, from the default registry.

Counters are kept by the processes that send (prometheus_client aggregates them across processes
when PROMETHEUS_MULTIPROC_DIR is set). The queue's depth and age are read from the database at
scrape time by a collector: the table is the truth, whichever process or node answers the scrape.
"""

import logging

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

SENT = Counter("portail_mail_sent", "Emails whose DATA the relay acknowledged.")
FAILED = Counter("portail_mail_failed", "Emails given up after their retry budget (or a 5yz).")
ERRORS = Counter("portail_mail_attempt_errors", "Delivery attempts that failed (to be retried).")
WORKER_ERRORS = Counter(
    "portail_mail_worker_errors", "Errors the send-mail worker survived (database, bugs)."
)


def _families(stats):
    depth = GaugeMetricFamily(
        "portail_mail_queue_depth", "Emails in the queue by state.", labels=["state"]
    )
    age = GaugeMetricFamily(
        "portail_mail_oldest_pending_age_seconds", "Age of the oldest email not yet sent."
    )
    if stats is not None:
        for state in ("pending", "sending", "failed"):
            depth.add_metric([state], stats[state])
        age.add_metric([], stats["oldest_pending_age"] or 0.0)
    return [depth, age]


class QueueCollector:
    def describe(self):  # called at registration: no database query then
        return _families(None)

    def collect(self):
        from .queue import queue_stats

        try:
            stats = queue_stats()
        except Exception as exc:  # database down: the scrape still answers, without these
            log.warning("mail queue metrics unavailable: %s", type(exc).__name__)
            return []
        return _families(stats)


_registered = False


def register() -> None:
    global _registered
    if not _registered:
        from portail.ops.metrics import register_scrape_time_collector

        register_scrape_time_collector(QueueCollector())
        _registered = True
