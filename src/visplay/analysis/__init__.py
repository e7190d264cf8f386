"""Instruments: self-consistency diagnosis, the silver-label audit, ablation studies."""
