"""Apache Spot-style threat detection (work in progress)."""
