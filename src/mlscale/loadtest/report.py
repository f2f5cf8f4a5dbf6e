"""The load test report: terminal summary, JSON (stable schema), PNG plots and one HTML page.

JSON schema (``schema`` = 1; fields are only ever added):

- ``url``, ``mode`` (fixed | knee | soak), ``scenario`` (what was sent), ``slo``
  (the targets), ``passed`` (the verdict), ``generated_at``;
- ``steps``: per step ``offered_rps``, ``sent_rps``, ``achieved_rps``,
  ``latency_ms`` (p50, p90, p99, p99.9, max), ``service_ms`` (the same, from the
  actual send), ``send_lag_ms`` (p99, max), ``errors`` by kind (``http_503``,
  ``timeout``, ``connect``...), ``error_rate``, ``requests_by_kind``,
  ``generator`` (cpu per process; saturated: the load was not applied as offered, late
  sends or client-side timeouts, with the reasons in saturation; cpu_bound: the
  generator's own CPU was the limit), ``server`` (figures scraped from
  ``/metrics``), ``verdict`` (passed, reasons);
- ``knee`` (knee mode): ``knee_rps``, ``limited_by_generator``;
- ``capacity`` (when a knee is known): replicas and users per replica;
- ``drift`` (soak mode): p99 of the first and last windows and their ratio.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlscale.loadtest.analysis import CapacityPlan, KneeSearch, Slo, Verdict
from mlscale.loadtest.generator import StepResult

__all__ = ["SCHEMA_VERSION", "LoadReport", "step_dict"]

SCHEMA_VERSION = 1
_PCTS = (50.0, 90.0, 99.0, 99.9)


def _ms(step: StepResult, which: str) -> dict[str, float | None]:
    hist = getattr(step, which)
    if not hist.get_total_count():
        return {"p50": None, "p90": None, "p99": None, "p99.9": None, "max": None}
    out: dict[str, float | None] = {f"p{p:g}": round(step.percentile_ms(p, which), 3) for p in _PCTS}
    out["max"] = round(hist.get_max_value() / 1000.0, 3)
    return out


def step_dict(step: StepResult, verdict: Verdict, server: dict[str, float] | None = None) -> dict[str, Any]:
    """One step in the report's JSON schema."""
    lag = step.send_lag
    return {
        "offered_rps": step.offered_rate,
        "duration_s": step.spec.duration,
        "arrival": step.spec.arrival if not step.spec.closed_loop else "closed-loop",
        "sent": step.sent,
        "sent_rps": round(step.sent_rate, 2),
        "achieved_rps": round(step.achieved_rate, 2),
        "ok": step.ok,
        "latency_ms": _ms(step, "latency"),
        "service_ms": _ms(step, "service"),
        "send_lag_ms": {
            "p99": round(lag.get_value_at_percentile(99) / 1000.0, 3) if lag.get_total_count() else None,
            "max": round(lag.get_max_value() / 1000.0, 3) if lag.get_total_count() else None,
        },
        "errors": dict(sorted(step.errors.items())),
        "error_rate": round(step.error_rate, 6),
        "requests_by_kind": dict(sorted(step.kinds.items())),
        "max_in_flight": step.max_in_flight,
        "generator": {
            "cpu": [round(c, 3) for c in step.cpu],
            "saturated": step.saturated,
            "cpu_bound": step.generator_saturated,
            "saturation": list(step.saturation),
        },
        "server": server or {},
        "verdict": {"passed": verdict.passed, "reasons": list(verdict.reasons)},
    }


@dataclass
class LoadReport:
    """Everything a load test found, ready to print, save and plot."""

    url: str
    mode: str
    scenario: dict[str, Any]
    slo: Slo
    steps: list[tuple[StepResult, Verdict, dict[str, float]]] = field(default_factory=list)
    knee: KneeSearch | None = None
    capacity: CapacityPlan | None = None
    drift: dict[str, float] | None = None

    @property
    def passed(self) -> bool:
        if self.mode == "knee":
            return self.knee is not None and self.knee.knee_rps is not None
        return (
            bool(self.steps)
            and all(v.passed for _, v, _ in self.steps)
            and not (self.drift and self.drift.get("ratio", 1.0) > 2.0)
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "url": self.url,
            "mode": self.mode,
            "scenario": self.scenario,
            "slo": {
                "latency_ms": {f"p{p:g}": v for p, v in self.slo.latency_ms.items()},
                "max_error_rate": self.slo.max_error_rate,
            },
            "passed": self.passed,
            "steps": [step_dict(s, v, srv) for s, v, srv in self.steps],
        }
        if self.knee is not None:
            out["knee"] = self.knee.as_dict()
        if self.capacity is not None:
            out["capacity"] = self.capacity.as_dict()
        if self.drift is not None:
            out["drift"] = self.drift
        return out

    # -- terminal -------------------------------------------------------------------------------

    def summary(self) -> str:
        head = (
            f"{'offered/s':>10} {'achieved/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} "
            f"{'max ms':>8} {'errors':>8}  verdict"
        )
        lines = [f"load test of {self.url} ({self.mode}); SLO: {self.slo.describe()}", head]
        for step, verdict, _ in self.steps:
            lat = _ms(step, "latency")

            def f(v: float | None) -> str:
                return "-" if v is None else f"{v:.2f}"

            note = "ok" if verdict.passed else "FAIL: " + "; ".join(verdict.reasons)
            if verdict.generator_bound:
                note += " [generator saturated: add --processes or another machine]"
            elif step.saturated:
                note += " [load not applied as offered: see below]"
            lines.append(
                f"{step.offered_rate:>10,.0f} {step.achieved_rate:>10,.0f} {f(lat['p50']):>8} {f(lat['p90']):>8} "
                f"{f(lat['p99']):>8} {f(lat['p99.9']):>9} {f(lat['max']):>8} {step.error_rate:>8.2%}  {note}"
            )
            errs = ", ".join(f"{k}={v}" for k, v in sorted(step.errors.items()))
            if errs:
                lines.append(f"{'':>10} errors: {errs}")
            for reason in step.saturation:
                lines.append(f"{'':>10} saturated: {reason}")
        if self.knee is not None:
            if self.knee.knee_rps is None:
                lines.append("knee: no rate met the SLO")
            else:
                lines.append(
                    f"knee: {self.knee.knee_rps:,.0f} req/s is the highest rate that met the SLO"
                    + (" (the generator limited the search)" if self.knee.limited_by_generator else "")
                )
        if self.capacity is not None:
            lines += ["capacity plan:"] + [f"  {line}" for line in self.capacity.lines()]
        if self.drift is not None:
            lines.append(
                f"soak drift: p99 {self.drift['first_p99_ms']:.1f} ms -> {self.drift['last_p99_ms']:.1f} ms "
                f"(x{self.drift['ratio']:.2f})"
            )
        lines.append(f"verdict: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)

    # -- files -----------------------------------------------------------------------------------

    def write_json(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.as_dict(), indent=2, allow_nan=False, default=_finite) + "\n")
        return p

    def plots(self) -> dict[str, bytes]:
        """PNG plots: latency percentiles vs offered rate, and the latency distribution."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out: dict[str, bytes] = {}
        steps = sorted((s for s, _, _ in self.steps), key=lambda s: s.offered_rate)
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        rates = [s.offered_rate for s in steps]
        for p, style in zip(_PCTS, ("-o", "-s", "-^", "-v"), strict=True):
            ax.plot(rates, [s.percentile_ms(p) for s in steps], style, label=f"p{p:g}", markersize=4)
        for p, limit in self.slo.latency_ms.items():
            ax.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"SLO p{p:g} {limit:g} ms")
        if self.knee is not None and self.knee.knee_rps:
            ax.axvline(self.knee.knee_rps, color="green", linestyle=":", label=f"knee {self.knee.knee_rps:,.0f}/s")
        ax.set_xlabel("offered load (requests/s)")
        ax.set_ylabel("latency from intended send (ms)")
        ax.set_yscale("log")
        ax.set_title("Latency percentiles vs offered load")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        out["latency_vs_rate.png"] = _png(fig)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for step in steps[-4:]:
            xs, ys = _spectrum(step)
            ax.plot(xs, ys, label=f"{step.offered_rate:,.0f}/s")
        ax.set_xscale("log")
        ticks = [0.5, 0.9, 0.99, 0.999, 0.9999]
        ax.set_xticks([1 / (1 - t) for t in ticks])
        ax.set_xticklabels([f"p{t * 100:g}" for t in ticks])
        ax.set_ylabel("latency (ms)")
        ax.set_title("Latency distribution (percentile spectrum)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, title="offered")
        out["latency_distribution.png"] = _png(fig)
        plt.close(fig)
        return out

    def write(self, folder: str | Path) -> Path:
        """Write report.json, the PNG plots and a self-contained report.html; returns the HTML path."""
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        self.write_json(root / "report.json")
        images = self.plots()
        for name, data in images.items():
            (root / name).write_bytes(data)
        page = root / "report.html"
        page.write_text(self._html(images), encoding="utf-8")
        return page

    def _html(self, images: dict[str, bytes]) -> str:
        data = self.as_dict()
        rows = []
        for s in data["steps"]:
            lat = s["latency_ms"]
            v = s["verdict"]
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(x))}</td>"
                    for x in (
                        f"{s['offered_rps']:,.0f}",
                        f"{s['achieved_rps']:,.0f}",
                        lat["p50"],
                        lat["p90"],
                        lat["p99"],
                        lat["p99.9"],
                        lat["max"],
                        f"{s['error_rate']:.2%}",
                        ", ".join(f"{k}={n}" for k, n in s["errors"].items()) or "-",
                        "pass" if v["passed"] else "FAIL: " + "; ".join(v["reasons"]),
                    )
                )
                + "</tr>"
            )
        imgs = "".join(
            f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,{base64.b64encode(b).decode()}"></figure>'
            for n, b in images.items()
        )
        verdict = "PASS" if self.passed else "FAIL"
        extra = ""
        if self.capacity is not None:
            extra += (
                "<h2>Capacity plan</h2><ul>"
                + "".join(f"<li>{html.escape(line)}</li>" for line in self.capacity.lines())
                + "</ul>"
            )
        if self.knee is not None:
            knee = "none met the SLO" if self.knee.knee_rps is None else f"{self.knee.knee_rps:,.0f} req/s"
            extra = f"<p><b>Knee:</b> {knee}</p>" + extra
        scenario = html.escape(json.dumps(self.scenario, indent=1))
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>mlscale load test</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}
.pass{{color:#060}}.fail{{color:#a00}}img{{max-width:100%}}figure{{display:inline-block;margin:0 1em 1em 0}}</style>
</head><body><h1>Load test: <span class="{verdict.lower()}">{verdict}</span></h1>
<p><b>Target:</b> {html.escape(self.url)} &middot; <b>mode:</b> {self.mode} &middot;
<b>SLO:</b> {html.escape(self.slo.describe())} &middot; <b>at</b> {data["generated_at"]}</p>
{extra}<h2>Steps</h2><table><tr><th>offered/s</th><th>achieved/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th>
<th>p99.9 ms</th><th>max ms</th><th>errors</th><th>by kind</th><th>verdict</th></tr>{"".join(rows)}</table>
<h2>Plots</h2>{imgs}<h2>Scenario</h2><pre>{scenario}</pre>
<p>Latency is measured from each request's intended send time (open loop), so queueing delay is counted.</p>
</body></html>
"""


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _spectrum(step: StepResult) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    if not step.latency.get_total_count():
        return xs, ys
    for p in (50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99):
        xs.append(1 / (1 - p / 100))
        ys.append(step.percentile_ms(p))
    return xs, ys


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
