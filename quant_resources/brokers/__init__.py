"""Brokers: Alpaca (``alpaca.LiveExecutor``); the paper broker is ``quant_lib.execution.PaperExecutor``.

Import the Alpaca module explicitly (``from quant_resources.brokers.alpaca import LiveExecutor``):
this package imports nothing heavy.
"""
