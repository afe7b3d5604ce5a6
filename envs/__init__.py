"""Gymnasium environments of rlnas, installed as `rlnas.envs`."""
