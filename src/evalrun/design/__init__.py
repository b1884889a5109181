"""The experimental design: the axes of a run as data, and the cell from which everything else follows.

A cell is one point of item x condition x variant x paraphrase x option order x model x sample (and
any axis registered later). Job ids, the expansion order, request keys, the result columns and what
summary.json records of the design all loop over the registered axes (axes.py); the cell and the
design that expands a spec into jobs are in cells.py. A spec that uses no optional axis (no
conditions, one prompt per variant, no options) expands exactly as release 0.1 did: the same job
ids, positions and request keys.

The API for code that groups or lists by axis (statistics, reports):

    design.axes                   # the axes this spec uses, in job-id order: Axis objects
    axis.name                     # the results column naming the axis's level (group by it)
    axis.columns                  # every results column it fills, with its polars type
    axis.optional                 # whether a spec may leave it out (then it is null in results)
    axes.used(names)              # the axes of a finished run, from summary.json's run.design.axes
                                  # (RunRecord.axes gives the same for a loaded run record)
    axes.registered()             # every axis, used or not
    axes.register(Axis(...))      # a new axis: levels, id part, columns and description in one place

So "group by the axes this spec uses, except item and sample" is
`[a.name for a in record.axes if a.name not in ("item_id", "sample")]`.
"""

from .axes import Axis, register, registered, unregister, used
from .cells import Cell, Design

__all__ = ["Axis", "Cell", "Design", "register", "registered", "unregister", "used"]
