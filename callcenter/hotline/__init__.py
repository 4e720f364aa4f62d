"""The 96166 hotline: the voice provider's webhooks, the IVR, agents' calls and call-backs."""
