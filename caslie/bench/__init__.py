"""``caslie bench``: what the streaming layer costs and what batching buys, measured by
comparing variants in the same run (ratios), written as JSON and a markdown summary."""
