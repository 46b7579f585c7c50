"""The ERP domain of ColdTrace and the HTTP API and web UI that serve it."""
