"""The accumulator: joins ``enriched`` records with their ``labels`` into the durable
training dataset (:mod:`streams.artifacts.datasets`), on the project's runner.

- :mod:`.join`: the join rules on one request's :class:`~schemas.accumulator.JoinState`.
- :mod:`.stage`: the stage (state in a changelogged table, shards, expiry sweeps).
- :mod:`.bounded`: ``caslie dataset accumulate``, the stage until the topics' end offsets.
"""
