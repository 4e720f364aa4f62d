"""Outbound and inbound SMS: the outbox, providers, templates and status callbacks."""
