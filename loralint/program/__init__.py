"""The program model of one Python module: what the training script does, read without running it.

Pipeline inside the package, each a module with one job:

  text.py      source positions (ast's byte offsets -> Span's character columns)
  flow.py      scopes and bindings with control flow; every read name -> the bindings reaching it
  values.py    the value lattice (literal / one of several / default of ... / object / unknown), size guards
  objects.py   what library calls make and how a config is applied (tables over import paths)
  evaluate.py  expressions -> values, following names, helpers, call sites, objects
  model.py     `Program`: the questions extraction and the context rules ask

Extraction (`loralint.extract.python`) builds ConfigSites from a `Program`; rules only ever see
the sites and the facts attached to them.
"""

from __future__ import annotations

from loralint.program.model import AnalysisLimit, Application, Preparation, Program, parse

__all__ = ["AnalysisLimit", "Application", "Preparation", "Program", "parse"]
