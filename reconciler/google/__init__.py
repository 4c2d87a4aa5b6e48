"""Everything that talks to Google: credentials, the client, retries, error translation."""
