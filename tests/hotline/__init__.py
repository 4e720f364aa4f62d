"""Tests of the 96166 hotline: IVR, webhooks, connector, work orders, load, statistics."""
