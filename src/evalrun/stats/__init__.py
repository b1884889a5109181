"""Statistics: small pure functions, each statistic once with its edge rules in its docstring, and
`summary`, which arranges a run's results into the tables they take and places what they return,
grouped as `grouping` says from the design's axes (crossed with the variants, or nested in them).

proportion (Wilson), confusion, kappa (Cohen's, weighted, Fleiss'), alpha (Krippendorff's),
agreement (the dict every comparison reports), paired (McNemar and the other paired tests, Holm),
bootstrap (item-clustered), clustered (Miller's clustered mean), inference (a comparison's
intervals and tests), numbers (JSON-safe floats), words (a kappa or a verdict in words), power
(items for an interval width or a test's power; the smallest detectable difference), samples
(a model's consistency with itself across samples), items (an item's label from its answers, pooled
and per prompt), levels (two levels of an axis compared item by item, and label by label), tracking
(whether a stated change tracks a behaviour change across two runs), misclassification
(agreement corrected for the readers' errors against a person), stated (a stated answer against a
measured behaviour: a label changing between conditions, the option listed first), prediction (self- and
cross-prediction accuracy against the most-common-answer baseline).
"""
