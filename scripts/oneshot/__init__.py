"""The steps of scripts/gpu_oneshot.py, one module each (env, correctness, throughput, training, score)."""
