"""neuroreduce: data-driven reduced-order surrogates of detailed neural simulations.

Pipeline: simulate -> dataset -> train -> evaluate -> report.
"""

__version__ = "0.1.0"
