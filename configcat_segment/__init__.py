"""ConfigCat feature flag changes and evaluations, forwarded to Twilio Segment."""

__version__ = "0.1.0"
