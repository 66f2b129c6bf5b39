"""Workers: image loading, model backends, and the captioner (EC3), voter (CQE) and
predictor (uniM3) stages."""
