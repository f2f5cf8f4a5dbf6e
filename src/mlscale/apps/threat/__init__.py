"""Apache Spot-style threat detection: suspicious connects in network flows and DNS.

- :func:`ingest` / :func:`read_flows` / :func:`read_dns`: Zeek, nfdump, nfcapd, Argus and
  tshark logs to one flow schema and one DNS schema (Parquet);
- :func:`flow_words` / :func:`dns_words`: Spot's words (and mlscale's), per IP document;
- :class:`ThreatDetector`: online LDA over the IP documents and the flow scores;
- :func:`rank_records` / :func:`ip_summary`: the ranked suspicious list and per-IP summary;
- :mod:`~mlscale.apps.threat.beacon`, :mod:`~mlscale.apps.threat.dga`, :mod:`~mlscale.apps.threat.hosts`:
  beaconing, generated-domain and per-host evidence; :mod:`~mlscale.apps.threat.scoring`: a log scored with
  all of it (``mlscale threat score`` / ``threat hosts``);
- :class:`FeedbackLog` / :class:`Verdict`: analyst verdicts for the next training;
- :func:`evaluate_threat`: ROC-AUC and precision@N against labels, beside Spot and IsolationForest;
- :func:`generate_flows` / :func:`iter_synthetic_flows`: synthetic flows with injected attacks;
- :func:`publish_model` / :func:`from_artifact`: to and from the registry.
"""

from mlscale.apps.threat._artifact import from_artifact, publish_model
from mlscale.apps.threat.app import ThreatApp
from mlscale.apps.threat.evaluate import ThreatReport, evaluate_threat, ranking_metrics, seeded_mixture
from mlscale.apps.threat.feedback import FeedbackLog, Verdict
from mlscale.apps.threat.ingest import IngestReport, detect_format, ingest, read_dns, read_flows
from mlscale.apps.threat.lda import OnlineLDA
from mlscale.apps.threat.model import Scores, ThreatDetector
from mlscale.apps.threat.rank import ip_summary, rank_records
from mlscale.apps.threat.schema import DNS_SCHEMA, FLOW_SCHEMA
from mlscale.apps.threat.synthetic import generate_flows
from mlscale.apps.threat.synthetic import iter_flows as iter_synthetic_flows
from mlscale.apps.threat.words import dns_words, flow_words

__all__ = [
    "DNS_SCHEMA",
    "FLOW_SCHEMA",
    "FeedbackLog",
    "IngestReport",
    "OnlineLDA",
    "Scores",
    "ThreatApp",
    "ThreatDetector",
    "ThreatReport",
    "Verdict",
    "application",
    "detect_format",
    "dns_words",
    "evaluate_threat",
    "flow_words",
    "from_artifact",
    "generate_flows",
    "ingest",
    "ip_summary",
    "iter_synthetic_flows",
    "publish_model",
    "rank_records",
    "ranking_metrics",
    "read_dns",
    "read_flows",
    "seeded_mixture",
]

#: The entry point the stages find this application by (``mlscale.apps`` group).
application = ThreatApp()
