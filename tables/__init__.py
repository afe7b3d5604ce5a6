"""Lookup tables shipped with rlnas (Parquet data only; read by `rlnas.hardware.table`)."""
