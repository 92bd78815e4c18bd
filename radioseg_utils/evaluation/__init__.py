"""Layer 8, scoring: matching-based metrics, the reliability diagram of ``p_real``, the
SDC1 scorer, finder comparison, crowding, the targets of the book, the oracle threshold
scan and the realism checks of the simulator.
"""
