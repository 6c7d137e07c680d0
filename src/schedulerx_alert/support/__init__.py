"""Process-wide helpers every layer may use: logging, URLs, credentials, redaction."""
