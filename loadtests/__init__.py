"""Locust load runs (locustfiles and load shapes) come with the load-testing issue. locust patches gevent on
import, so nothing here is ever imported by the test session."""
