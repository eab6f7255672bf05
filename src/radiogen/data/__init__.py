"""Survey data: reading, cut-outs, selection cuts, preprocessing and storage."""
