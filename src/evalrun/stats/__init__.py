"""Statistics: small pure functions over aligned label vectors and tables (one module per family),
and `summary`, which arranges a run's results into the tables they take."""
