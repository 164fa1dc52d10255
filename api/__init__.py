"""The Falcon REST API the dashboard calls (built by the API issue)."""
