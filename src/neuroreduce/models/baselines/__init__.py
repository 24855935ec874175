"""Non-gradient baselines fitted in closed form or by a convex solver, as torch modules.

Each family (:mod:`.ridge_arx`, :mod:`.svm`, :mod:`.glm`) is a causal linear filter of the
inputs (:mod:`.filters`) whose weights ``Family.fit`` computes from the assembled train split
(:mod:`.fitting`, :mod:`.solvers`), so training, saving, loading, prediction and evaluation work
as for the gradient-trained families.
"""
