"""The read side: result files loaded and checked (results, schema), and what is derived from them
(stats, replicates, compare, cost, tradeoff, interactions, sweep curves). Never starts a run."""
