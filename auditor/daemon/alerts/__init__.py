"""Alerts: the pure diff that decides what to say (diff.py), the message builders (slack.py,
webhook.py) and the delivery edge that sends them."""
